"""Frame folders: which files are frames, in which order, and how their pixels are read."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import moving_square_frames, write_gif
from xmempp import FrameFolder, XMemPPError, open_frames
from xmempp.video import IMAGENET_MEAN, IMAGENET_STD, extract_frames, to_network_input


def write_jpegs(folder, names: list[str]):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(folder / name)
    return folder


def test_hidden_files_are_not_frames(tmp_path):
    folder = write_jpegs(tmp_path / "frames", ["00000.jpg", "00001.jpg"])
    (folder / "._00000.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (folder / ".DS_Store").write_bytes(b"Bud1")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    frames = FrameFolder(folder)
    assert frames.names == ["00000", "00001"]
    assert frames.read(0).shape == (8, 8, 3)


def test_two_files_with_one_stem_are_refused_naming_both(tmp_path):
    folder = write_jpegs(tmp_path / "frames", ["00002.jpg", "00003.jpg", "00003.png"])
    with pytest.raises(XMemPPError, match=r"00003\.jpg and 00003\.png"):
        FrameFolder(folder)


@pytest.mark.parametrize("names", [["A00000.jpg", "a00000.jpg"], ["\u00e900000.jpg", "e\u030100000.jpg"]])
def test_two_frames_named_alike_but_for_case_or_accent_encoding_are_refused_naming_both(tmp_path, names):
    """On macOS or Windows their masks (A00000.png, a00000.png) would be one file, the second replacing the first
    (round five): refused everywhere, since outputs made here are copied and unzipped there."""
    folder = write_jpegs(tmp_path / "frames", names)
    first, second = sorted(names)  # natural order, as the frames are listed
    with pytest.raises(XMemPPError, match=f"{re.escape(first)} and {re.escape(second)} in .* named alike but for "
                                          "letter case"):
        FrameFolder(folder)


def test_a_run_refuses_frames_named_alike_but_for_case_before_writing_anything(tmp_path, network):
    from tests.conftest import square_mask, write_palette_mask
    from xmempp import run_on_video

    folder = write_jpegs(tmp_path / "frames", ["A00000.jpg", "a00000.jpg"])
    write_palette_mask(tmp_path / "masks" / "A00000.png", square_mask(0)[:8, :8])
    with pytest.raises(XMemPPError, match="A00000.jpg and a00000.jpg"):
        run_on_video(folder, tmp_path / "masks", tmp_path / "out", network=network)
    assert not (tmp_path / "out" / "masks").exists()


@pytest.mark.parametrize("kind", ["dangling symlink", "symlink loop", "folder", "fifo"])
def test_a_frame_name_that_is_no_readable_file_is_refused_naming_it(tmp_path, kind):
    """A broken link, a folder or a pipe named 00001.jpg was skipped without a word: the video lost a frame, and
    every later frame's index moved (issue 16, round three)."""
    import os

    folder = write_jpegs(tmp_path / "frames", ["00000.jpg", "00002.jpg"])
    odd = folder / "00001.jpg"
    if kind == "dangling symlink":
        odd.symlink_to(tmp_path / "gone.jpg")
    elif kind == "symlink loop":
        odd.symlink_to(odd)
    elif kind == "folder":
        odd.mkdir()
    else:
        os.mkfifo(odd)
    with pytest.raises(XMemPPError, match=r"00001\.jpg in .*frames is not a readable image file"):
        FrameFolder(folder)


def test_a_corrupt_frame_with_a_newline_in_its_name_is_named_on_one_line(tmp_path):
    """A frame named "a<newline>forged.jpg" split the message into two lines, the second one the name's."""
    folder = write_jpegs(tmp_path / "frames", ["00000.jpg"])
    (folder / "00001\nforged: all fine.jpg").write_bytes(b"not a jpeg")
    frames = FrameFolder(folder)
    with pytest.raises(XMemPPError) as raised:
        frames.read(1)
    message = str(raised.value)
    assert message.isprintable() and "frame '00001\\nforged: all fine.jpg'" in message, message
    assert str(folder) not in message  # Pillow's own text named the whole path


def test_frames_are_in_natural_order(tmp_path):
    folder = write_jpegs(tmp_path / "frames", ["frame_10.jpg", "frame_2.jpg", "frame_1.jpg", "frame_100.jpg"])
    assert FrameFolder(folder).names == ["frame_1", "frame_2", "frame_10", "frame_100"]


def test_zero_padded_names_keep_their_plain_name_order(tmp_path):
    """The usual case, where natural order must equal the official XMem++'s (plain sorted names)."""
    names = [f"{prefix}{i:05d}.jpg" for prefix in ("a_", "B_", "c_", "") for i in (0, 1, 9, 10, 99, 100)]
    folder = write_jpegs(tmp_path / "frames", names)
    assert FrameFolder(folder).names == [name[:-4] for name in sorted(names)]


def test_a_16_bit_greyscale_frame_keeps_its_values(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    grey = np.array([[0, 257, 32896], [65535, 1000, 60000]], np.uint16)
    Image.fromarray(grey).save(folder / "00000.png")
    rgb = FrameFolder(folder).read(0)
    expected = np.round(grey / 257).astype(np.uint8)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert np.array_equal(rgb, np.repeat(expected[..., None], 3, axis=2))


@pytest.mark.parametrize(("height", "width", "size"), [(96, 128, 96), (96, 128, 64), (128, 96, 80), (75, 75, 50),
                                                       (480, 854, 480), (97, 131, 200)])
def test_the_network_input_equals_torchvisions_normalise_and_resize(height, width, size):
    tf = pytest.importorskip("torchvision.transforms.functional")
    rgb = np.random.default_rng(height + width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    expected = tf.normalize(torch.from_numpy(rgb).permute(2, 0, 1).float().div(255), IMAGENET_MEAN, IMAGENET_STD)
    expected = tf.resize(expected, [size], interpolation=tf.InterpolationMode.BILINEAR, antialias=True)
    assert torch.equal(to_network_input(rgb, size), expected)


def test_a_gif_is_read_frame_by_frame(tmp_path):
    """Every GIF ended in "cannot decode ...: not a readable video (OSError: `FFMPEG` can not handle the given
    uri.)": imageio's ffmpeg reader refuses the .gif name."""
    frames = moving_square_frames(4)
    folder = extract_frames(write_gif(tmp_path / "clip.gif", frames), tmp_path / "frames")
    decoded = [np.array(Image.open(path)) for path in sorted(folder.iterdir())]
    assert [path.name for path in sorted(folder.iterdir())] == [f"frame_{i:06d}.png" for i in range(4)]
    for got, sent in zip(decoded, frames, strict=True):  # a GIF's 256 colours: close, not equal
        assert got.shape == sent.shape and np.abs(got.astype(int) - sent).mean() < 8


def test_a_gif_whose_header_claims_4_gigapixels_is_refused_naming_it_and_the_limit(tmp_path):
    """A GIF claiming 65535x65535 frames showed ffmpeg's raw text; its header is read first, as Pillow's
    decompression-bomb limit is."""
    gif = write_gif(tmp_path / "huge.gif", moving_square_frames(2), claimed_size=(65535, 65535))
    with pytest.raises(XMemPPError, match=r"cannot read video huge\.gif: the image has 4,294,836,225 pixels, more "
                                          r"than the 178,956,970 pixels"):
        extract_frames(gif, tmp_path / "frames")


def test_frames_are_extracted_only_into_a_new_or_empty_folder_and_no_file_of_the_callers_is_replaced(tmp_path):
    """open_frames(video, work_dir=a project folder) replaced the caller's own frame_000000.png with the video's
    first frame without a word (eighth hostile round)."""
    gif = write_gif(tmp_path / "clip.gif", moving_square_frames(3))
    project = tmp_path / "my_project"
    project.mkdir()
    (project / "frame_000000.png").write_bytes(b"the caller's own picture")
    with pytest.raises(XMemPPError, match=r"cannot extract the frames of clip\.gif into .*my_project: it already "
                                          r"holds frame_000000\.png; frames are extracted only into a new or empty"):
        open_frames(gif, work_dir=project)
    assert (project / "frame_000000.png").read_bytes() == b"the caller's own picture"
    assert [path.name for path in project.iterdir()] == ["frame_000000.png"]
    assert open_frames(gif, work_dir=tmp_path / "new" / "frames").names == [f"frame_{i:06d}" for i in range(3)]


@pytest.mark.parametrize(("target", "said"), [
    ("loop", r"cannot be followed: a symbolic link on its way leads back to itself"),
    ("nowhere/frames", r"is a symbolic link to nowhere/frames, which does not exist"),
], ids=["a loop", "a link to nothing"])
def test_a_work_dir_that_is_a_link_leading_nowhere_is_named_not_a_bug(tmp_path, target, said):
    """open_frames(video, work_dir=a link loop or a link to nothing) raised mkdir's bare FileExistsError
    (twenty-eighth hostile round)."""
    gif = write_gif(tmp_path / "clip.gif", moving_square_frames(2))
    (tmp_path / "loop").symlink_to(target)
    with pytest.raises(XMemPPError, match=said):
        open_frames(gif, work_dir=tmp_path / "loop")
    if target == "nowhere/frames":  # a folder to make below a link to nothing: FileExistsError from mkdir, raw
        with pytest.raises(XMemPPError, match=r"is a symbolic link to nowhere/frames, which does not exist"):
            open_frames(gif, work_dir=tmp_path / "loop" / "frames")
    if target == "loop":  # a folder to make inside the loop: OSError ELOOP from mkdir, raw
        with pytest.raises(XMemPPError, match=r"loop cannot be followed: a symbolic link on its way leads back to "
                                              r"itself"):
            open_frames(gif, work_dir=tmp_path / "loop" / "frames")


def test_a_video_path_that_is_a_fifo_is_refused_naming_it_instead_of_waiting_for_a_writer(tmp_path):
    """mkfifo v.mp4; xmempp run --images v.mp4 waited for a writer without end (eighth hostile round)."""
    fifo = tmp_path / "v.mp4"
    os.mkfifo(fifo)
    with pytest.raises(XMemPPError, match=r"the video .*v\.mp4 is not a regular file: give a video file or a "
                                          r"folder of frames"):
        open_frames(fifo, work_dir=tmp_path / "frames")
    assert not (tmp_path / "frames").exists()


def _png_with_a_text_chunk_of(megabytes: int) -> bytes:
    """A 16x12 PNG whose compressed text chunk unpacks to `megabytes` (a few KB on disk)."""
    import io

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (megabytes << 20), zip=True)
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def test_a_frame_whose_metadata_unpacks_past_pillows_limit_is_refused_naming_it(tmp_path):
    """A 3 KB PNG whose text chunk unpacks to 2 MB ended `run` in 'unexpected internal failure (ValueError:
    Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK)' (ninth hostile round)."""
    (tmp_path / "00000.png").write_bytes(_png_with_a_text_chunk_of(2))
    with pytest.raises(XMemPPError, match="cannot read frame 00000.png: its metadata .* unpacks to more than Pillow's "
                                          "limit"):
        FrameFolder(tmp_path).read(0)


def test_a_frame_whose_many_text_chunks_pass_pillows_limit_is_refused_naming_it(tmp_path):
    """80 text chunks of 1 MB each (a few KB compressed) ended in 'unexpected internal failure (ValueError: Too
    much memory used in text chunks)' (tenth hostile round)."""
    import io

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for index in range(80):
        info.add_text(f"c{index}", "x" * (900 << 10), zip=True)
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(buffer, "PNG", pnginfo=info)
    (tmp_path / "00000.png").write_bytes(buffer.getvalue())
    with pytest.raises(XMemPPError, match="cannot read frame 00000.png: its metadata"):
        FrameFolder(tmp_path).read(0)


def test_a_negative_frame_is_no_frame_rather_than_past_the_end():
    from xmempp.video import check_frame_index

    with pytest.raises(XMemPPError, match="^frame -1 is no frame of the video: frames are numbered from 0 to 11$"):
        check_frame_index(-1, 12)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_work_dir_the_system_takes_no_folder_in_is_named(tmp_path):
    """open_frames(video, "/proc/self/frames") raised mkdir's bare FileNotFoundError (twenty-ninth hostile round)."""
    gif = write_gif(tmp_path / "clip.gif", moving_square_frames(2))
    with pytest.raises(XMemPPError, match=r"^cannot make the folder /proc/self/frames for the frames of clip.gif: the "
                                          r"system takes no new folder there"):
        open_frames(gif, work_dir="/proc/self/frames")


@pytest.mark.parametrize(("kind", "said"), [
    ("file", "is a file, not a folder"),
    ("fifo", "is not a regular file, not a folder"),
    ("loop", "is a loop of symbolic links"),
])
def test_a_frame_folder_that_is_something_else_is_named_as_what_it_is(tmp_path, kind, said):
    """FrameFolder said "frame folder not found" of a video file, a FIFO and a loop of links, all there
    (twenty-eighth hostile round)."""
    path = tmp_path / "v.mp4"
    if kind == "file":
        path.write_bytes(b"a video")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(path)
    with pytest.raises(XMemPPError, match=f"^the frame folder .*v.mp4 {said}"):
        FrameFolder(path)


def _gif_frames_then(action):
    """A stand-in for video._gif_frames: the GIF's frames, `action` done once two of them are yielded."""
    from PIL import ImageSequence

    def frames(video):
        with Image.open(video) as image:
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                if index == 2:
                    action()
                yield np.asarray(frame.convert("RGB"))
    return frames


def test_a_work_dir_swapped_mid_extraction_is_named_and_never_written_through(tmp_path, monkeypatch):
    """A work_dir swapped mid-extraction for a link to a folder holding a file named like a later frame was said
    to be a damaged video, and the frames before it were written into that folder (thirtieth hostile round). The
    extraction writes into the folder it made, wherever it goes, and says the work_dir was replaced."""
    import xmempp.video

    gif = write_gif(tmp_path / "clip.gif", moving_square_frames(4))
    work_dir, user = tmp_path / "frames", tmp_path / "user"
    user.mkdir()
    (user / "frame_000002.png").write_text("my own file")

    def swap():
        work_dir.rename(tmp_path / "frames.moved")
        work_dir.symlink_to(user)

    monkeypatch.setattr(xmempp.video, "_gif_frames", _gif_frames_then(swap))
    with pytest.raises(XMemPPError) as refused:
        open_frames(gif, work_dir=work_dir)
    assert str(refused.value) == (f"cannot extract the frames of clip.gif into {work_dir}: the folder was moved or "
                                  "replaced while they were extracted (it is now a symbolic link); extract them "
                                  "again into a new folder")
    assert [p.name for p in user.iterdir()] == ["frame_000002.png"]
    assert (user / "frame_000002.png").read_text() == "my own file"
    assert len(list((tmp_path / "frames.moved").iterdir())) == 4


def test_a_file_put_into_the_work_dir_mid_extraction_is_named_not_the_video(tmp_path, monkeypatch):
    """A file named like a later frame, put into the work_dir during the extraction, was kept ("x": never written
    over), and the video was said to be damaged (thirtieth hostile round)."""
    import xmempp.video

    gif = write_gif(tmp_path / "clip.gif", moving_square_frames(4))
    work_dir = tmp_path / "frames"
    monkeypatch.setattr(xmempp.video, "_gif_frames",
                        _gif_frames_then(lambda: (work_dir / "frame_000003.png").write_text("not a frame")))
    with pytest.raises(XMemPPError) as refused:
        open_frames(gif, work_dir=work_dir)
    assert str(refused.value) == (f"cannot extract the frames of clip.gif into {work_dir}: frame_000003.png was put "
                                  "there while they were extracted, and is kept; extract them again into a new "
                                  "folder")
    assert (work_dir / "frame_000003.png").read_text() == "not a frame"


def test_a_video_cut_short_is_refused_not_segmented_as_a_shorter_one(tmp_path):
    """An MP4 with its index at the front (as web videos are), cut at half its size as an interrupted download
    leaves it: ffmpeg's reader stopped at the cut as at the end, and a run segmented the first frames as the whole
    video, exit 0 (forty-sixth hostile round). The whole file still decodes, every frame."""
    import imageio.v3 as iio

    whole = tmp_path / "whole.mp4"
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(30)]  # noise: no frame is tiny
    iio.imwrite(whole, np.stack(frames), fps=10, plugin="FFMPEG", codec="libx264", macro_block_size=1,
                output_params=["-movflags", "+faststart"])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    assert len(list(extract_frames(whole, tmp_path / "whole").iterdir())) == 30
    with pytest.raises(XMemPPError, match=r"^cannot decode cut\.mp4: it is cut short \(its container announces "
                                          r"[\d,]+ bytes, the file holds [\d,]+; an interrupted download"):
        extract_frames(cut, tmp_path / "cut")


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "libx264"), (".webm", "libvpx"), (".avi", "mjpeg"),
                                               (".mp4", "libx264"), (".mov", "libx264")])
def test_a_video_missing_only_its_last_part_is_refused_as_cut_short(tmp_path, suffix, codec):
    """An AVI cut at three quarters (ffmpeg estimates its length from its size, so the frames missing were never
    missed) and an MKV, WebM or MP4 missing less than a tenth of its frames were segmented as the whole video, exit
    0 (forty-ninth hostile round). Each container states its size: a file holding less is refused, whatever ffmpeg
    estimates; the whole file is read, every frame."""
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    frames = np.stack([rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(20)])
    whole = tmp_path / f"whole{suffix}"
    iio.imwrite(whole, frames, fps=10, plugin="FFMPEG", codec=codec, macro_block_size=1,
                output_params=["-movflags", "+faststart"] if suffix in (".mp4", ".mov") else [])
    assert len(list(extract_frames(whole, tmp_path / "whole").iterdir())) == 20
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size * 95 // 100])
    with pytest.raises(XMemPPError, match=rf"^cannot decode cut\{suffix}: it is cut short \(its container announces "
                                          rf"{whole.stat().st_size:,} bytes, the file holds [\d,]+; an interrupted"):
        extract_frames(cut, tmp_path / "cut")


def test_a_container_whose_size_is_not_stated_tells_nothing(tmp_path):
    """Junk after a video's last box, an MKV of unknown size (a live recording's), and files of other kinds: no
    size is read from them, and ffmpeg's reading decides, as before."""
    from xmempp.containers import declared_size

    for junk_after in (b"\xff\xfe\x00\x01garbage", b"\xff\xfe\x00\x01\x00\x01\x02\x03"):
        junk = tmp_path / "junk.mp4"
        junk.write_bytes((16).to_bytes(4, "big") + b"ftyp" + bytes(8) + junk_after)
        assert declared_size(junk) is None
    live = tmp_path / "live.mkv"
    live.write_bytes(bytes.fromhex("1a45dfa3 84 42868101") + bytes.fromhex("18538067 01ffffffffffffff") + b"clusters")
    assert declared_size(live) is None
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert declared_size(text) is None


def test_a_video_whose_long_sound_track_is_damaged_keeps_its_frames(tmp_path):
    """A 6-frame video with a minute of sound, damaged: its header announces the minute's frames and ffmpeg's
    errors were the sound's, so the whole video was refused as cut short (forty-seventh hostile round)."""
    import subprocess

    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=128x96:rate=10", "-f", "lavfi",
                    "-i", "sine=frequency=440:duration=60", "-t", "0.6", "-map", "0:v", "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", str(tmp_path / "v.mp4")], check=True)
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(tmp_path / "v.mp4"), "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=60", "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
                    str(tmp_path / "sound.mp4")], check=True)
    damaged = bytearray((tmp_path / "sound.mp4").read_bytes())
    middle = len(damaged) // 2
    damaged[middle:middle + 2000] = bytes(2000)  # the sound's packets (the 6 frames lie at the front)
    (tmp_path / "damaged.mp4").write_bytes(damaged)
    assert len(list(extract_frames(tmp_path / "damaged.mp4", tmp_path / "frames").iterdir())) == 6


def test_a_cut_in_the_video_stream_read_is_found_though_another_stream_comes_first(tmp_path):
    """A small one-frame stream first, the video itself second (the one ffmpeg picks and the frames came from), cut
    short: the check read the first stream and let the cut video through, exit 0 (forty-eighth hostile round)."""
    import subprocess

    import imageio.v3 as iio
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "video.mp4", np.stack([rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
                                                  for _ in range(30)]),
                fps=10, plugin="FFMPEG", codec="libx264", macro_block_size=1)
    iio.imwrite(tmp_path / "cover.mp4", np.zeros((1, 32, 48, 3), np.uint8), fps=10, plugin="FFMPEG", codec="libx264",
                macro_block_size=1)
    whole = tmp_path / "two.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(tmp_path / "cover.mp4"), "-i", str(tmp_path / "video.mp4"),
                    "-map", "0", "-map", "1", "-c", "copy", "-movflags", "+faststart", str(whole)], check=True)
    assert len(list(extract_frames(whole, tmp_path / "whole").iterdir())) == 30
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    with pytest.raises(XMemPPError, match=r"^cannot decode cut\.mp4: "):
        extract_frames(cut, tmp_path / "cut")


def test_a_url_given_as_the_video_is_said_to_be_one_as_it_was_written():
    """run_on_video(imgs_in_path="https://example.com/x.mp4") said "video or frame folder not found:
    https:/example.com/x.mp4", one slash gone (fiftieth hostile round)."""
    from xmempp.video import check_source

    with pytest.raises(XMemPPError, match=r"^the video is given as a URL \(https://example\.com/x\.mp4\): give a "
                                          r"local video file or frame folder \(download it first\)$"):
        check_source(Path("https://example.com/x.mp4"))
    with pytest.raises(XMemPPError, match=r"^the video is given as a URL \(file:///tmp/x\.mp4\)"):
        check_source(Path("file:///tmp/x.mp4"))


def test_good_videos_whose_containers_state_no_size_or_carry_stray_bytes_are_read_whole(tmp_path):
    """An AVI written to a pipe (its sizes left at 0xFFFFFFFF) and an MP4 with a newline or a few zero bytes after
    its last box were refused as cut short since round 49's size check (fiftieth hostile round). A streamed AVI whose
    last chunk runs past its end is still refused."""
    import subprocess

    import imageio.v3 as iio
    import imageio_ffmpeg

    rng = np.random.default_rng(0)
    frames = np.stack([rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(10)])
    iio.imwrite(tmp_path / "clip.mp4", frames, fps=10, plugin="FFMPEG", codec="libx264", macro_block_size=1)
    streamed = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "clip.mp4"),
                               "-c:v", "mjpeg", "-f", "avi", "pipe:1"], capture_output=True, check=True).stdout
    (tmp_path / "streamed.avi").write_bytes(streamed)
    clip = (tmp_path / "clip.mp4").read_bytes()
    (tmp_path / "newline.mp4").write_bytes(clip + b"\n")
    (tmp_path / "padded.mp4").write_bytes(clip + bytes(7))
    for name in ("streamed.avi", "newline.mp4", "padded.mp4"):
        assert len(list(extract_frames(tmp_path / name, tmp_path / f"{name}-frames").iterdir())) == 10, name
    (tmp_path / "cut.avi").write_bytes(streamed[:len(streamed) * 9 // 10])
    with pytest.raises(XMemPPError, match=r"^cannot decode cut\.avi: it is cut short"):
        extract_frames(tmp_path / "cut.avi", tmp_path / "cut-frames")


def _avi(index_ends_at: int | None = None) -> bytes:
    """A minimal AVI: a header list (with OpenDML's index of indexes, one entry ending at `index_ends_at`, when
    given) and one frame chunk."""
    import struct

    indx = b""
    if index_ends_at is not None:
        indx = (b"indx" + struct.pack("<IHBBI", 40, 4, 0, 0, 1) + b"00dc" + bytes(12)
                + struct.pack("<QII", index_ends_at - 10, 10, 1))
    hdrl = b"hdrl" + indx
    movi = b"movi" + b"00dc" + struct.pack("<I", 4) + b"abcd"
    body = b"AVI " + b"LIST" + struct.pack("<I", len(hdrl)) + hdrl + b"LIST" + struct.pack("<I", len(movi)) + movi
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_an_avi_whose_header_lists_an_index_past_its_end_is_cut_and_junk_after_a_stream_tells_nothing(tmp_path):
    """An AVI of more than 1 GB cut exactly where its second part began ends on a whole chunk: only its header's
    index of indexes tells that more followed. A streamed AVI followed by zeros (a gigabyte of them walked chunk by
    chunk for minutes) or by a few line ends was refused or walked as chunks; a FIFO put at the video's name was
    waited on for ever (fifty-first hostile round)."""
    import subprocess

    import imageio_ffmpeg

    from xmempp.containers import declared_size

    whole = tmp_path / "whole.avi"
    whole.write_bytes(_avi(index_ends_at=60))
    assert declared_size(whole) == whole.stat().st_size
    cut = tmp_path / "cut.avi"
    cut.write_bytes(_avi(index_ends_at=1 << 30))
    assert declared_size(cut) == 1 << 30
    streamed = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                               "testsrc=size=64x48:rate=10", "-t", "0.5", "-c:v", "mjpeg", "-f", "avi", "pipe:1"],
                              capture_output=True, check=True).stdout
    for after in (bytes(1 << 20), b"\r\n" * 8, b"\xff" * 64):
        (tmp_path / "padded.avi").write_bytes(streamed + after)
        assert declared_size(tmp_path / "padded.avi") is None
    os.mkfifo(tmp_path / "fifo.mp4")
    with pytest.raises(XMemPPError, match="is not a regular file"):
        declared_size(tmp_path / "fifo.mp4")


def test_a_fragment_cut_inside_its_header_is_cut_and_text_after_a_streamed_avi_tells_nothing(tmp_path):
    """A fragmented MP4 cut a few bytes into a fragment's `moof` header was taken whole (its leftover bytes read as
    stray ones), and text after an AVI written to a pipe was read as a chunk running past the end (fifty-second
    hostile round)."""
    import struct
    import subprocess

    import imageio_ffmpeg

    from xmempp.containers import declared_size

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "3", "-c:v",
                    "libx264", "-g", "10", "-movflags", "frag_keyframe+empty_moov", str(tmp_path / "frag.mp4")],
                   check=True)
    fragmented = (tmp_path / "frag.mp4").read_bytes()
    second_fragment = fragmented.index(b"moof", fragmented.index(b"moof") + 4) - 4
    (tmp_path / "cut.mp4").write_bytes(fragmented[:second_fragment + 6])
    assert declared_size(tmp_path / "cut.mp4") > (tmp_path / "cut.mp4").stat().st_size
    streamed = subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "0.5",
                               "-c:v", "mjpeg", "-f", "avi", "pipe:1"], capture_output=True, check=True).stdout
    (tmp_path / "text.avi").write_bytes(streamed + b"uploaded with a note after it")
    assert declared_size(tmp_path / "text.avi") is None
    (tmp_path / "frame_cut.avi").write_bytes(streamed + b"00dc" + struct.pack("<I", 1000) + bytes(10))
    assert declared_size(tmp_path / "frame_cut.avi") > (tmp_path / "frame_cut.avi").stat().st_size


def test_a_cut_4_to_7_bytes_into_a_fragments_or_a_streamed_frames_header_is_a_cut_and_text_after_a_video_is_not(
        tmp_path):
    """Cuts that left only a fragment's `moof` size, or a streamed AVI frame's `00dc` and part of its size, were
    segmented as a shorter video (exit 0); and 5 to 7 bytes of text after a good MP4 or MOV (`\\nDone`) were read
    as a box's header cut, the video refused as cut short (fifty-third hostile round, F1 to F3)."""
    import subprocess

    import imageio_ffmpeg

    from xmempp.containers import declared_size

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    source = ["-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "3"]
    layouts = {"frag.mp4": ["-c:v", "libx264", "-g", "10", "-movflags", "frag_keyframe+empty_moov"],
               "base.mp4": ["-c:v", "libx264", "-g", "10", "-movflags", "frag_keyframe+empty_moov+default_base_moof"],
               "fast.mp4": ["-c:v", "libx264", "-movflags", "faststart"], "plain.mov": ["-c:v", "mjpeg"]}
    for name, options in layouts.items():
        subprocess.run([ffmpeg, *source, *options, str(tmp_path / name)], check=True)
        video = (tmp_path / name).read_bytes()
        for text in (b"\nDone", b"\nsave", b"  \n\nmoo", b"\xff\xff\xff\xffm", b"\r\n\r\n", b"\n", bytes(7)):
            (tmp_path / "tail").write_bytes(video + text)
            assert declared_size(tmp_path / "tail") in (None, len(video)), (name, text)
    for name in layouts:  # a line of text whose bytes 4 to 7 spell a box's name (fifty-fourth round, F1)
        video = (tmp_path / name).read_bytes()
        for text in (b"    meta: recorded\n", b"tag=free\n", b"<!--skip-->\n", b"abcdudta and more\n"):
            (tmp_path / "tail").write_bytes(video + text)
            assert declared_size(tmp_path / "tail") is None, (name, text)
    fragmented = (tmp_path / "frag.mp4").read_bytes()
    second_fragment = fragmented.index(b"moof", fragmented.index(b"moof") + 4) - 4
    for cut_into_header in range(4, 8):
        (tmp_path / "cut.mp4").write_bytes(fragmented[:second_fragment + cut_into_header])
        assert declared_size(tmp_path / "cut.mp4") > second_fragment + cut_into_header, cut_into_header
    streamed = subprocess.run([ffmpeg, *source[:-1], "1", "-c:v", "mjpeg", "-f", "avi", "pipe:1"],
                              capture_output=True, check=True).stdout
    last_frame = streamed.rindex(b"00dc")
    for cut_into_header in range(4, 8):
        (tmp_path / "cut.avi").write_bytes(streamed[:last_frame + cut_into_header])
        assert declared_size(tmp_path / "cut.avi") > last_frame + cut_into_header, cut_into_header


def test_stray_bytes_after_a_fragmented_mp4_with_a_large_fragment_tell_nothing(tmp_path):
    """Four bytes of text after a good fragmented MP4 whose largest box (an mdat) was 84 MB or more read as a cut
    header of a box no larger than twice it: a good 124 MB video refused as cut short (fifty-fourth hostile round,
    F2). A fragment's next box after an mdat is a moof, no larger than a few times the moofs before it."""
    import struct

    from xmempp.containers import declared_size

    def box(name: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + name + body

    video = tmp_path / "large.mp4"
    mdat_size = 100 << 20
    with open(video, "wb") as file:  # sparse: the frames' bytes are never written
        file.write(box(b"ftyp", b"isom\0\0\0\0") + box(b"moov", bytes(32)) + box(b"moof", bytes(200)))
        file.write(struct.pack(">I", mdat_size) + b"mdat")
        file.seek(mdat_size - 8, 1)
        end = file.tell()
        file.write(b"\n\n\n\n")
    assert declared_size(video) is None
    with open(video, "r+b") as file:  # the next fragment's moof header cut after its size: a cut
        file.seek(end)
        file.write(struct.pack(">I", 208))
    assert declared_size(video) == end + 208


@pytest.mark.parametrize("movflags", ["+dash+frag_keyframe", "+frag_keyframe+empty_moov"])
def test_a_fragments_moof_header_cut_after_its_index_or_times_is_a_cut(tmp_path, movflags):
    """With a sidx (`-movflags +dash`) or a prft (`-write_prft`) before each moof, a moof header cut after its size
    was taken for stray bytes, and 5 of 60 frames segmented, exit 0 (fifty-fifth hostile round, F1). Four bytes
    after a fragmented MP4's index (mfra) are stray bytes."""
    import struct
    import subprocess

    import imageio_ffmpeg

    from xmempp.containers import declared_size

    extra = ["-write_prft", "wallclock"] if "empty_moov" in movflags else []
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10", "-t", "3", "-c:v", "libx264", "-g", "5", "-movflags", movflags,
                    *extra, str(tmp_path / "frag.mp4")], check=True)
    video = (tmp_path / "frag.mp4").read_bytes()
    boxes, offset = [], 0
    while offset < len(video):
        size, name = struct.unpack(">I4s", video[offset:offset + 8])
        boxes.append((offset, name))
        offset += size
    names = [name for _, name in boxes]
    assert b"sidx" in names or b"prft" in names, names
    second_moof = [offset for offset, name in boxes if name == b"moof"][1]
    for cut_into_header in range(4, 8):
        (tmp_path / "cut.mp4").write_bytes(video[:second_moof + cut_into_header])
        assert declared_size(tmp_path / "cut.mp4") > second_moof + cut_into_header, cut_into_header
    if names[-1] == b"mfra":
        (tmp_path / "tail.mp4").write_bytes(video + struct.pack(">I", 16))
        assert declared_size(tmp_path / "tail.mp4") is None


@pytest.mark.parametrize("movflags", ["+frag_keyframe", "+frag_keyframe+faststart", "+dash+frag_keyframe",
                                      "+frag_keyframe -write_prft wallclock"])
def test_a_fragmented_mp4_cut_in_its_first_moof_right_after_a_moof_or_in_an_index_is_a_cut(tmp_path, movflags):
    """With `+frag_keyframe` the first frames lie in the moov's plain mdat: a cut 4 to 7 bytes into the first moof
    was taken (5 of 60 frames, exit 0); so were a cut right after a later moof (its mdat missing: 45 of 60), and one
    8 to 12 bytes into the sidx before a moof (fifty-sixth hostile round, F1 and F2). With a 32-byte prft before
    the first moof, its size 4 bytes in was held to four times the prft's (9 of 60 frames: fifty-seventh, F2)."""
    import struct
    import subprocess

    import imageio_ffmpeg

    from xmempp.containers import declared_size

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10", "-t", "6", "-c:v", "libx264", "-g", "5", "-movflags",
                    *movflags.split(), str(tmp_path / "frag.mp4")], check=True)
    video = (tmp_path / "frag.mp4").read_bytes()
    boxes, offset = [], 0
    while offset < len(video):
        size, name = struct.unpack(">I4s", video[offset:offset + 8])
        boxes.append((offset, size, name))
        offset += size
    assert declared_size(tmp_path / "frag.mp4") == len(video)
    moofs = [(offset, size) for offset, size, name in boxes if name == b"moof"]
    cuts = [moofs[0][0] + into for into in range(4, 8)] + [offset + size for offset, size in moofs[1:4]]
    cuts += [offset + into for offset, _, name in boxes if name == b"sidx" for into in (8, 12)][:4]
    for cut in cuts:
        (tmp_path / "cut.mp4").write_bytes(video[:cut])
        assert (declared_size(tmp_path / "cut.mp4") or 0) > cut, (cut, [(o, n) for o, _, n in boxes][:8])
    for text in (b"\nDone", b"  \n\nmoo", b"\n\n\n\n"):
        (tmp_path / "tail.mp4").write_bytes(video + text)
        assert declared_size(tmp_path / "tail.mp4") in (None, len(video)), text


def test_a_whole_mp4_with_the_start_of_another_after_it_is_cut_short_not_a_crash(tmp_path):
    """A download appended to a whole video, cut inside its moov: the look for a fragment table in that moov read
    past the file's end and stopped the run with a struct.error traceback, "this is a bug" (fifty-seventh hostile
    round, F1). The moov's size says the file was cut."""
    import subprocess

    import imageio_ffmpeg

    from xmempp.containers import declared_size

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10", "-t", "2", "-c:v", "libx264", "-movflags", "+faststart",
                    str(tmp_path / "whole.mp4")], check=True)
    whole = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "appended.mp4").write_bytes(whole + whole[:500])
    assert declared_size(tmp_path / "appended.mp4") > len(whole) + 500
