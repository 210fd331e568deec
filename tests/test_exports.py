"""Exports: every format read back (with its own reader where there is one) equals the masks pixel for pixel."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import another_mount_namespace
from xmempp.errors import XMemPPError
from xmempp.exports import FORMATS, export_masks, safe_folder_names
from xmempp.masks.drawing import davis_palette
from xmempp.masks.files import mask_image

NAMES = {1: "chair", 2: "left hand", 3: "ball"}


def three_object_masks(count: int = 5, height: int = 40, width: int = 56) -> dict[str, np.ndarray]:
    """Frames where objects move, touch, and leave (object 3 only in the middle frames)."""
    masks = {}
    for i in range(count):
        mask = np.zeros((height, width), np.uint8)
        mask[5:20, 3 + i:15 + i] = 1
        mask[18:35, 20 + 2 * i:40] = 2  # overlaps object 1's rows: touching borders
        if 1 <= i <= 3:
            mask[30:38, 45:50 + i] = 3
        masks[f"{i:05d}"] = mask
    return masks


def ids_from_coco(coco, image_id: int, shape: tuple[int, int]) -> np.ndarray:
    ids = np.zeros(shape, np.uint8)
    for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
        binary = coco.annToMask(annotation).astype(bool)
        assert not ids[binary].any(), "objects overlap in the COCO export"
        ids[binary] = annotation["category_id"]
    return ids


def test_davis_pngs_equal_the_masks_with_their_palette(tmp_path):
    masks = three_object_masks()
    export_masks(masks, tmp_path / "export", ["davis"], NAMES)
    for name, mask in masks.items():
        with Image.open(tmp_path / "export" / "Annotations" / f"{name}.png") as image:
            assert image.mode == "P" and image.getpalette()[:768] == davis_palette()
            np.testing.assert_array_equal(np.asarray(image), mask)


def test_coco_json_read_by_pycocotools_equals_the_masks(tmp_path):
    from pycocotools.coco import COCO

    masks = three_object_masks()
    export_masks(masks, tmp_path / "export", ["coco"], NAMES, video_name="clip")
    coco = COCO(str(tmp_path / "export" / "coco.json"))
    assert {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())} == NAMES
    images = sorted(coco.loadImgs(coco.getImgIds()), key=lambda image: image["frame_index"])
    assert [image["frame_name"] for image in images] == list(masks)
    for image, mask in zip(images, masks.values()):
        assert (image["height"], image["width"]) == mask.shape and image["video_id"] == 1
        np.testing.assert_array_equal(ids_from_coco(coco, image["id"], mask.shape), mask)
    assert coco.dataset["videos"] == [{"id": 1, "name": "clip", "height": 40, "width": 56, "length": 5}]


def test_coco_areas_and_boxes_are_the_objects(tmp_path):
    masks = three_object_masks()
    export_masks(masks, tmp_path, ["coco"], NAMES)
    document = json.loads((tmp_path / "coco.json").read_text())
    first = [a for a in document["annotations"] if a["image_id"] == 1 and a["category_id"] == 1][0]
    assert first["area"] == 15 * 12 and first["bbox"] == [3, 5, 12, 15] and first["iscrowd"] == 0


def test_youtube_vis_tracks_equal_the_masks_and_are_null_where_absent(tmp_path):
    from pycocotools import mask as coco_mask

    masks = three_object_masks()
    export_masks(masks, tmp_path, ["youtube-vis"], NAMES, video_name="clip")
    document = json.loads((tmp_path / "youtube_vis.json").read_text(encoding="utf-8"))
    (video,) = document["videos"]
    assert video["length"] == 5 and video["file_names"][0] == "clip/00000.jpg"
    assert {c["id"]: c["name"] for c in document["categories"]} == NAMES
    rebuilt = np.zeros((5, 40, 56), np.uint8)
    for track in document["annotations"]:
        assert len(track["segmentations"]) == 5 and (track["height"], track["width"], track["length"]) == (40, 56, 5)
        for frame, segmentation in enumerate(track["segmentations"]):
            if segmentation is None:
                continue
            rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
            rebuilt[frame][coco_mask.decode(rle).astype(bool)] = track["category_id"]
    np.testing.assert_array_equal(rebuilt, np.stack(list(masks.values())))
    ball = next(t for t in document["annotations"] if t["category_id"] == 3)
    assert ball["segmentations"][0] is None and ball["segmentations"][4] is None and ball["areas"][0] is None


def test_mattes_are_white_on_black_at_the_frame_size_and_rebuild_the_masks(tmp_path):
    masks = three_object_masks()
    exported = export_masks(masks, tmp_path, ["mattes"], NAMES)
    assert exported.matte_folders == {1: "chair", 2: "left hand", 3: "ball"}
    for name, mask in masks.items():
        rebuilt = np.zeros_like(mask)
        for object_id, folder in exported.matte_folders.items():
            with Image.open(tmp_path / "mattes" / folder / f"{name}.png") as image:
                assert image.mode == "L" and image.size == (56, 40)
                matte = np.asarray(image)
            assert set(np.unique(matte)) <= {0, 255}
            rebuilt[matte == 255] = object_id
        np.testing.assert_array_equal(rebuilt, mask)
    with open(tmp_path / "mattes" / "objects.csv", newline="", encoding="utf-8") as file:
        assert list(csv.reader(file))[1:] == [["1", "chair", "chair"], ["2", "left hand", "left hand"],
                                              ["3", "ball", "ball"]]


def test_a_named_object_absent_from_every_frame_gets_a_category_and_black_mattes(tmp_path):
    masks = three_object_masks()
    export_masks(masks, tmp_path, ["coco", "mattes"], {**NAMES, 7: "lost"})
    document = json.loads((tmp_path / "coco.json").read_text())
    assert {"id": 7, "name": "lost", "supercategory": "object"} in document["categories"]
    assert not [a for a in document["annotations"] if a["category_id"] == 7]
    for name in masks:
        assert not np.asarray(Image.open(tmp_path / "mattes" / "lost" / f"{name}.png")).any()


def test_unnamed_objects_are_called_by_their_id(tmp_path):
    exported = export_masks(three_object_masks(), tmp_path, ["mattes"], {2: "hand"})
    assert exported.object_names == {1: "object 1", 2: "hand", 3: "object 3"}
    assert (tmp_path / "mattes" / "object 1" / "00000.png").is_file()


AWKWARD = {1: "a/b", 2: "a:b", 3: "..", 4: "CON", 5: "", 6: "Äpfel 🍎 日本", 7: "Cat", 8: "cat", 9: "a_b",
           10: "con.txt", 11: "x" * 300, 12: "trailing. ", 13: "tab\there", 14: "back\\slash"}


def test_any_object_names_become_distinct_safe_folder_names():
    folders = safe_folder_names(AWKWARD)
    assert len({f.casefold() for f in folders.values()}) == len(AWKWARD)
    for folder in folders.values():
        assert folder and folder not in (".", "..") and not set('<>:"/\\|?*\t') & set(folder)
        assert folder == folder.strip() and not folder.endswith(".")
        assert folder.split(".")[0].upper() not in ("CON", "PRN", "AUX", "NUL")
        assert len(folder.encode()) <= 100
    assert folders[6] == "Äpfel 🍎 日本" and folders[1] == "a_b" and folders[3] == "object 3"


def test_awkward_names_export_mattes_into_their_own_folders(tmp_path):
    masks = {"00000": np.arange(15, dtype=np.uint8).repeat(4).reshape(6, 10)}
    exported = export_masks(masks, tmp_path / "export", ["mattes"], AWKWARD)
    children = {path.name for path in (tmp_path / "export" / "mattes").iterdir() if path.is_dir()}
    assert children == set(exported.matte_folders.values()) and len(children) == 14
    for object_id, folder in exported.matte_folders.items():
        matte = np.asarray(Image.open(tmp_path / "export" / "mattes" / folder / "00000.png"))
        np.testing.assert_array_equal(matte == 255, masks["00000"] == object_id)


def test_a_run_folder_exports_its_masks_with_their_own_palette(tmp_path):
    masks = three_object_masks()
    palette = davis_palette()
    palette[3:6] = [10, 200, 30]
    (tmp_path / "run" / "masks").mkdir(parents=True)
    for name, mask in masks.items():
        mask_image(mask, palette).save(tmp_path / "run" / "masks" / f"{name}.png")
    export_masks(tmp_path / "run", tmp_path / "export", FORMATS)
    for name, mask in masks.items():
        with Image.open(tmp_path / "export" / "Annotations" / f"{name}.png") as image:
            assert image.getpalette()[3:6] == [10, 200, 30]
            np.testing.assert_array_equal(np.asarray(image), mask)


def test_an_existing_export_is_refused_unless_replaced(tmp_path):
    masks = three_object_masks()
    export_masks(masks, tmp_path, ["mattes"], NAMES)
    with pytest.raises(XMemPPError, match="mattes already exists"):
        export_masks(masks, tmp_path, ["mattes"], {1: "renamed"})
    export_masks(masks, tmp_path, ["mattes"], {1: "renamed"}, overwrite=True)
    assert {p.name for p in (tmp_path / "mattes").iterdir()} == {"renamed", "object 2", "object 3", "objects.csv"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_a_mask_of_another_size_is_refused_naming_its_frame(tmp_path):
    masks = three_object_masks()
    masks["00003"] = np.zeros((20, 20), np.uint8)
    with pytest.raises(XMemPPError, match="frame 00003 is 20x20"):
        export_masks(masks, tmp_path, ["davis"])
    assert not (tmp_path / "Annotations").exists()


def test_a_full_disk_during_an_export_names_the_export_folder(tmp_path, monkeypatch):
    """`export --to` on a full disk said only "error: no space left on the device", naming no folder."""
    import errno

    from xmempp import exports

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(exports, "_write_davis", full)
    with pytest.raises(XMemPPError, match=f"cannot export davis into {tmp_path / 'to'}: no space left on the device"):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"])
    assert list((tmp_path / "to").iterdir()) == []


@pytest.fixture
def folder_taking_no_new_file(tmp_path):
    """A folder where no file may be created: immutable (`chattr +i`) for root, whom permissions do not stop."""
    import shutil
    import subprocess

    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("root without chattr +i on this file system: no folder refuses root a new file")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_into_a_folder_taking_no_new_file_names_the_destination_not_a_temporary(folder_taking_no_new_file,
                                                                                           fmt):
    """`export --to` an immutable folder named its hidden temporary (.coco.json.<hex>.tmp), not the destination."""
    with pytest.raises(XMemPPError) as raised:
        export_masks(three_object_masks(), folder_taking_no_new_file, [fmt])
    message = str(raised.value)
    assert str(folder_taking_no_new_file) in message and ".tmp" not in message
    assert re.search(r": (permission denied|operation not permitted)$", message), message


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc here: no folder that takes no new file")
@pytest.mark.parametrize(("to", "doing"), [("/proc/self", "export davis into"),
                                           ("/proc/self/new", "create the export folder")])
def test_the_export_command_names_a_folder_the_system_takes_no_new_file_in_with_the_reason(tmp_path, capsys, to,
                                                                                         doing):
    """`export --to /proc/self` printed "[Errno 2] No such file or directory: '/proc/self/.Annotations.<hex>.tmp'"
    (seventh hostile round): the system refuses a new entry there with an errno the words table did not hold."""
    from xmempp.cli import main

    (tmp_path / "masks").mkdir()
    mask_image(three_object_masks(1)["00000"], davis_palette()).save(tmp_path / "masks" / "00000.png")
    assert main(["export", "--run", str(tmp_path / "masks"), "--to", to, "--formats", "davis"]) == 1
    err = capsys.readouterr().err
    assert f"error: cannot {doing} {to}: the system takes no new file or folder there (no such file or " \
           "directory)" in err, err
    assert "Errno" not in err and ".tmp" not in err


def test_an_unknown_format_is_refused_naming_the_formats(tmp_path):
    with pytest.raises(XMemPPError, match="unknown export format 'png'.*davis, coco, youtube-vis, mattes"):
        export_masks(three_object_masks(), tmp_path, ["png"])


def test_a_repeated_format_is_refused_naming_it(tmp_path):
    """["davis", "davis"] was taken silently as ["davis"]."""
    with pytest.raises(XMemPPError, match="export format 'davis' is given twice"):
        export_masks(three_object_masks(), tmp_path, ["davis", "coco", "davis"])
    assert list(tmp_path.iterdir()) == []


def test_the_export_command_refuses_a_repeated_format_as_an_argument_error(tmp_path, capsys):
    from xmempp.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["export", "--run", str(tmp_path), "--to", str(tmp_path / "x"), "--formats", "coco,davis,coco"])
    assert exit_.value.code == 2 and "'coco' is given twice in 'coco,davis,coco'" in capsys.readouterr().err


def test_an_export_never_replaces_the_masks_it_reads(tmp_path):
    masks = three_object_masks()
    (tmp_path / "Annotations").mkdir()
    for name, mask in masks.items():
        mask_image(mask, davis_palette()).save(tmp_path / "Annotations" / f"{name}.png")
    with pytest.raises(XMemPPError, match="would replace the masks it reads"):
        export_masks(tmp_path / "Annotations", tmp_path, ["davis"], overwrite=True)
    assert len(list((tmp_path / "Annotations").iterdir())) == 5


def _masks_folder(folder):
    folder.mkdir(parents=True)
    for name, mask in three_object_masks().items():
        mask_image(mask, davis_palette()).save(folder / f"{name}.png")
    return folder


def test_an_export_bind_mounted_onto_the_masks_it_reads_never_removes_them(tmp_path):
    """`mount --bind run/masks to/Annotations`, then --overwrite: the masks were deleted (issue 16, round three)."""
    from tests.test_outputs import bind_mounted

    source = _masks_folder(tmp_path / "run" / "masks")
    with bind_mounted(source, tmp_path / "to" / "Annotations"), pytest.raises(XMemPPError, match="would replace"):
        export_masks(source, tmp_path / "to", ["davis"], overwrite=True)
    assert len(list(source.iterdir())) == 5


def test_an_export_entry_is_compared_with_the_masks_it_reads_by_device_and_inode(tmp_path, monkeypatch):
    """Where bind mounts are not allowed: an entry that is the masks' folder (same st_dev and st_ino) is refused."""
    source = _masks_folder(tmp_path / "run" / "masks")
    entry = tmp_path / "to" / "Annotations"
    entry.mkdir(parents=True)
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # to/Annotations reports the masks folder's identity, as a bind mount would
        return real_stat(source if Path(path) == entry else path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(XMemPPError, match="would replace the masks it reads"):
        export_masks(source, tmp_path / "to", ["davis"], overwrite=True)
    monkeypatch.undo()
    assert len(list(source.iterdir())) == 5


def test_an_export_entry_that_holds_the_masks_it_reads_through_a_mount_is_refused(tmp_path, monkeypatch):
    """A mattes/ or Annotations/ that is a folder above the masks (the run folder itself, mounted) is refused."""
    source = _masks_folder(tmp_path / "run" / "masks")
    entry = tmp_path / "to" / "Annotations"
    entry.mkdir(parents=True)
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # to/Annotations is the run folder, as `mount --bind run to/Annotations` makes it
        return real_stat(tmp_path / "run" if Path(path) == entry else path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(XMemPPError, match="would replace the masks it reads"):
        export_masks(source, tmp_path / "to", ["davis"], overwrite=True)
    monkeypatch.undo()
    assert len(list(source.iterdir())) == 5


def test_the_export_command_writes_every_format_of_a_run_with_the_names_beside_it(square_clip, tmp_path, checkpoint,
                                                                                 capsys):
    from xmempp.cli import main

    frames, masks = square_clip
    run = tmp_path / "run"
    assert main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(run), "--weights",
                 str(checkpoint), "--size", "96", "--quiet", "--no-overlay"]) == 0
    (run / "objects.csv").write_text("id,name\n1,yellow square\n", encoding="utf-8")
    assert main(["export", "--run", str(run), "--to", str(tmp_path / "export")]) == 0
    assert "exported 1 object(s), 'yellow square' (id 1), to " in capsys.readouterr().out
    for path in sorted((run / "masks").iterdir()):
        predicted = np.asarray(Image.open(path))
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "export" / "Annotations" / path.name)),
                                      predicted)
        matte = np.asarray(Image.open(tmp_path / "export" / "mattes" / "yellow square" / path.name))
        np.testing.assert_array_equal(matte == 255, predicted == 1)
    document = json.loads((tmp_path / "export" / "coco.json").read_text())
    assert len(document["images"]) == 12 and document["categories"][0]["name"] == "yellow square"
    assert document["videos"][0]["name"] == "run"
    assert (tmp_path / "export" / "youtube_vis.json").is_file()


def test_the_export_command_refuses_an_unfinished_run(tmp_path, capsys):
    from xmempp.cli import main
    from xmempp.outputs import Manifest, write_manifest

    masks = three_object_masks()
    (tmp_path / "run" / "masks").mkdir(parents=True)
    for name, mask in masks.items():
        mask_image(mask, davis_palette()).save(tmp_path / "run" / "masks" / f"{name}.png")
    write_manifest(tmp_path / "run", Manifest(list(masks), (40, 56), [0], 480, "w", "s"))
    assert main(["export", "--run", str(tmp_path / "run"), "--to", str(tmp_path / "export"), "--formats", "davis"]) == 1
    assert "did not finish" in capsys.readouterr().err
    # its masks/ by another name, a symbolic link: the manifest was skipped and the unfinished masks exported
    # (twenty-eighth hostile round)
    (tmp_path / "mine").symlink_to(tmp_path / "run" / "masks", target_is_directory=True)
    assert main(["export", "--run", str(tmp_path / "mine"), "--to", str(tmp_path / "export"), "--formats", "davis"]) == 1
    assert "did not finish" in capsys.readouterr().err
    assert not (tmp_path / "export").exists()


def test_the_export_command_refuses_an_unknown_format_before_reading(tmp_path, capsys):
    from xmempp.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["export", "--run", str(tmp_path), "--to", str(tmp_path / "x"), "--formats", "coco,tiff"])
    assert exit_.value.code == 2 and "formats are davis, coco, youtube-vis, mattes" in capsys.readouterr().err


def test_an_unzipped_app_export_exports_with_its_object_names(tmp_path, capsys):
    from xmempp.cli import main

    masks = three_object_masks()
    (tmp_path / "zip" / "Annotations").mkdir(parents=True)
    for name, mask in masks.items():
        mask_image(mask, davis_palette()).save(tmp_path / "zip" / "Annotations" / f"{name}.png")
    (tmp_path / "zip" / "objects.csv").write_text("id,name\n1,chair\n2,left hand\n3,ball\n", encoding="utf-8")
    assert main(["export", "--run", str(tmp_path / "zip"), "--to", str(tmp_path / "out"), "--formats", "mattes"]) == 0
    assert {p.name for p in (tmp_path / "out" / "mattes").iterdir()} == {"chair", "left hand", "ball", "objects.csv"}


def test_the_export_command_leaves_out_names_of_objects_no_mask_holds_and_says_so(tmp_path, capsys):
    """export --names naming id 7, which no mask holds, added a COCO category 'lost' and an empty matte folder and
    counted it among the objects exported (seventh hostile round): a names file may cover a whole project."""
    from xmempp.cli import main

    (tmp_path / "masks").mkdir()
    for name, mask in three_object_masks().items():
        mask_image(mask, davis_palette()).save(tmp_path / "masks" / f"{name}.png")
    names = tmp_path / "names.csv"
    names.write_text("id,name\n1,chair\n7,lost\n", encoding="utf-8")
    assert main(["export", "--run", str(tmp_path / "masks"), "--to", str(tmp_path / "out"), "--names", str(names),
                 "--formats", "coco,youtube-vis,mattes"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("exported 3 object(s), 'chair' (id 1), 'object 2' (id 2), 'object 3' (id 3), to")
    assert f"{names} names object id(s) that no mask holds, left out of the export: 7 ('lost')" in printed.err
    document = json.loads((tmp_path / "out" / "coco.json").read_text())
    assert [category["id"] for category in document["categories"]] == [1, 2, 3]
    tracks = json.loads((tmp_path / "out" / "youtube_vis.json").read_text())["annotations"]
    assert sorted(track["category_id"] for track in tracks) == [1, 2, 3]
    assert not (tmp_path / "out" / "mattes" / "lost").exists()


@pytest.mark.parametrize(("data", "expected"), [
    ("\ufeffid,name\n1,chair\n".encode(), {1: "chair"}),  # a spreadsheet's "CSV UTF-8" starts with a BOM
    ("id,name\n1,café\n".encode("latin-1"), "names.csv: it is not UTF-8 text (byte 13); save it as CSV UTF-8"),
    (b"id,name\n1," + b"a" * 200_000 + b"\n", "names.csv: not a readable CSV (field larger than field limit"),
])
def test_object_names_from_a_spreadsheets_csv_are_read_or_named_as_unreadable(tmp_path, data, expected):
    """export --names: a BOM hid the id column ('expected columns id,name'); Latin-1 text and a field past the
    csv module's limit were 'unexpected internal failure ... this is a bug' (issue 16, round four)."""
    from xmempp.exports import read_object_names

    path = tmp_path / "names.csv"
    path.write_bytes(data)
    if isinstance(expected, dict):
        assert read_object_names(path) == expected
    else:
        with pytest.raises(XMemPPError, match=re.escape(expected)):
            read_object_names(path)



@pytest.mark.parametrize("data", [b"1,chair\n", b"id;name\n"], ids=["no header", "a header of semicolons"])
def test_object_names_without_the_id_and_name_header_are_refused_naming_the_file(tmp_path, data):
    """export --names with a CSV whose first line is not id,name (`1,chair` alone, or a spreadsheet's `id;name`)
    read no name and exported 'object 1' without a word: csv took the first row for the header (sixth hostile
    round)."""
    from xmempp.exports import read_object_names

    path = tmp_path / "names.csv"
    path.write_bytes(data)
    with pytest.raises(XMemPPError, match=re.escape(f"{path} line 1: expected the header id,name")):
        read_object_names(path)


@pytest.mark.parametrize(("mask", "says"), [
    (np.zeros((4, 6), np.float32), "is an array of float32; expected integer object ids 0..255 (or booleans)"),
    (np.full((4, 6), 2**40, np.int64), "has ids outside 0..255"),
    (np.zeros((0, 0), np.uint8), "is empty (0x0 pixels)"),
    ("img", "is str, not an array: expected (H, W) object ids"),
    (None, "is NoneType, not an array: expected (H, W) object ids"),
    ([[1, 2], [3]], "has rows of different lengths: expected (H, W) object ids")],
    ids=["floats", "an id of 2**40", "0x0", "a str", "None", "ragged rows"])
def test_masks_that_are_no_object_ids_are_refused_naming_the_frame(tmp_path, mask, says):
    """export_masks({frame: float mask}) ended in IndexError from np.unique's values used as indices, a 0x0 mask in
    "cannot write empty image" (seventh hostile round); a str or None as a mask was said to have "shape ()"
    (fortieth)."""
    with pytest.raises(XMemPPError, match=re.escape(f"the mask of frame f0 {says}")):
        export_masks({"f0": mask}, tmp_path / "out", ["davis"])
    assert not (tmp_path / "out" / "Annotations").exists()


@pytest.mark.parametrize("name", ["../escaped", "", "a\x00b", "a\ud800"], ids=["../", "empty", "NUL", "surrogate"])
def test_a_frame_name_that_is_no_plain_file_name_is_refused_and_nothing_is_written(tmp_path, name):
    """export_masks({"../escaped": mask}, out) wrote out/escaped.png outside its Annotations/; '' ended in "unknown file
    extension", a NUL or a lone surrogate in Python's own errors (seventh hostile round)."""
    with pytest.raises(XMemPPError, match="frame name"):
        export_masks({name: np.ones((4, 6), np.uint8)}, tmp_path / "out", ["davis", "mattes"])
    assert list(tmp_path.iterdir()) == []  # refused before the export folder is made


def test_a_frame_name_too_long_for_a_file_name_is_refused_naming_the_frame_and_the_limit(tmp_path):
    """A 300-character frame name ended in "cannot export davis into out: the name is too long", naming neither the
    frame nor the limit (fortieth hostile round)."""
    with pytest.raises(XMemPPError, match=re.escape(f"the frame name {'x' * 40!r}... is 300 bytes long: its mask's "
                                                    "file name would pass the 255 bytes a file name may have")):
        export_masks({"x" * 300: np.ones((4, 6), np.uint8)}, tmp_path / "out", ["davis"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("options", "says"), [
    ({"palette": [0, 0, 300]}, "palette must be a list of flattened RGB values"),
    ({"palette": [0, 0]}, "palette must be a list of flattened RGB values"),
    ({"out": 5}, "out must be a path (a str, bytes or Path), got 5 (int)"),
    ({"formats": None}, "formats must be a list of format names (davis, coco, youtube-vis, mattes), got None"),
    ({"formats": "davis"}, "formats must be a list of format names (davis, coco, youtube-vis, mattes), got 'davis'"),
    ({"object_names": ["a"]}, "object_names must be a dict of object ids to names, or None, got ['a'] (list)"),
], ids=["300", "two values", "an int", "formats None", "formats a str", "object_names a list"])
def test_a_palette_or_folder_of_the_wrong_kind_is_refused_naming_it(tmp_path, options, says):
    """A palette value of 300 ended in Pillow's ValueError, `out` of another type in a TypeError (seventh hostile
    round); formats=None and object_names=["a"] in a TypeError and an AttributeError, formats="davis" in 'unknown
    export format 'd'' (eighth)."""
    arguments = {"out": tmp_path / "out", "formats": ["davis"], **options}
    with pytest.raises(XMemPPError, match=re.escape(says)):
        export_masks({"f0": np.ones((4, 6), np.uint8)}, **arguments)
    assert list(tmp_path.iterdir()) == []


def test_masks_of_another_kind_than_a_dict_or_a_folder_are_refused_naming_both_kinds(tmp_path):
    """export_masks([mask], out) said 'masks must be a path', a list of arrays being no path (eighth hostile round)."""
    with pytest.raises(XMemPPError, match=re.escape("masks must be a dict of frame names to masks, or a folder's "
                                                    "path, got [array([[1, 1")):
        export_masks([np.ones((4, 6), np.uint8)], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_export_takes_its_folders_given_as_bytes_as_os_functions_take_them(tmp_path):
    """export_masks(b"masks", b"out") ended in a TypeError (Path(bytes)); `out` as bytes was then refused where
    run_on_video and os functions take bytes (seventh hostile round)."""
    (tmp_path / "masks").mkdir()
    for name, mask in three_object_masks(2).items():
        mask_image(mask, davis_palette()).save(tmp_path / "masks" / f"{name}.png")
    exported = export_masks(os.fsencode(tmp_path / "masks"), os.fsencode(tmp_path / "out"), ["davis"])
    assert exported.paths["davis"] == tmp_path / "out" / "Annotations"
    assert sorted(p.name for p in (tmp_path / "out" / "Annotations").iterdir()) == ["00000.png", "00001.png"]


def test_boolean_masks_export_as_object_1(tmp_path):
    """A boolean mask (a likely input: `frame > 0`) ended in IndexError (seventh hostile round)."""
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:4] = True
    export_masks({"f0": mask}, tmp_path / "out", ["davis"])
    assert np.array_equal(np.array(Image.open(tmp_path / "out" / "Annotations" / "f0.png")), mask.astype(np.uint8))


def test_an_empty_names_file_names_no_object(tmp_path):
    """An empty --names file ended in 'unexpected internal failure (ValueError: I/O operation on closed file.)'
    (seventh hostile round)."""
    from xmempp.exports import read_object_names

    (tmp_path / "names.csv").write_bytes(b"")
    assert read_object_names(tmp_path / "names.csv") == {}


def test_a_names_file_that_is_a_pipe_or_too_large_is_refused_without_reading_it(tmp_path):
    """--names given a FIFO waited for a writer forever, and /dev/zero read until memory ran out (13.5 GB in 40 s:
    seventh hostile round)."""
    from xmempp.exports import MAX_NAMES_BYTES, read_object_names

    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(XMemPPError, match=re.escape(f"{tmp_path / 'pipe.csv'}: it is not a regular file")):
        read_object_names(tmp_path / "pipe.csv")
    with open(tmp_path / "huge.csv", "wb") as file:
        file.truncate(MAX_NAMES_BYTES + 1)
    with pytest.raises(XMemPPError, match="more than the 1,048,576 a names file may have"):
        read_object_names(tmp_path / "huge.csv")


@pytest.mark.parametrize(("cell", "says"), [
    ("\uff11", "expected columns id,name with a whole-number id (ASCII digits), got '\uff11'"),
    ("+1", "expected columns id,name with a whole-number id (ASCII digits), got '+1'"),
    ("1e0", "expected columns id,name with a whole-number id (ASCII digits), got '1e0'"),
    ("9" * 5000, "object id 99999999999999999999... (5,000 digits) is not in 1..255"),
], ids=["fullwidth 1", "+1", "1e0", "5000 digits"])
def test_an_object_id_that_is_not_ascii_digits_of_1_to_255_is_refused_naming_the_line(tmp_path, cell, says):
    """export --names read a fullwidth '１' and '+1' as id 1 (int() takes them); an id of 5000 digits was refused with
    no word of its size (seventh hostile round)."""
    from xmempp.exports import read_object_names

    path = tmp_path / "names.csv"
    path.write_text(f"id,name\n{cell},chair\n", encoding="utf-8")
    with pytest.raises(XMemPPError, match=re.escape(f"{path} line 2: {says}")):
        read_object_names(path)


def test_an_object_named_twice_in_the_names_file_is_refused_naming_the_line(tmp_path):
    """export --names with two lines for one id took the last name without a word (sixth hostile round)."""
    from xmempp.exports import read_object_names

    path = tmp_path / "names.csv"
    path.write_text("id,name\n1,chair\n2,table\n1,stool\n", encoding="utf-8")
    with pytest.raises(XMemPPError, match=re.escape(f"{path} line 4: object id 1 is named a second time")):
        read_object_names(path)


def test_a_second_export_into_a_folder_being_exported_into_is_refused_naming_it(tmp_path, monkeypatch):
    """Six concurrent `export --overwrite` into one folder: one failed with "[Errno 2] No such file or directory:
    'objects.csv'", naming no folder (each replaced the entries another was writing)."""
    import threading

    from xmempp import exports

    masks = three_object_masks()
    out = tmp_path / "export"
    writing, release = threading.Event(), threading.Event()
    write_mattes = exports._write_mattes

    def slow_mattes(*args):
        write_mattes(*args)
        writing.set()
        release.wait(30)

    monkeypatch.setattr(exports, "_write_mattes", slow_mattes)
    first = threading.Thread(target=export_masks, args=(masks, out, ["davis", "mattes"], NAMES), daemon=True)
    first.start()
    assert writing.wait(30)
    monkeypatch.setattr(exports, "_write_mattes", write_mattes)
    with pytest.raises(XMemPPError, match=f"another xmempp command \\(a run, batch, evaluate or export\\) is writing into {re.escape(str(out))}"):
        export_masks(masks, out, ["davis", "mattes"], NAMES, overwrite=True)
    release.set()
    first.join(30)
    assert len(list((out / "Annotations").glob("*.png"))) == len(masks)
    assert (out / "mattes" / "objects.csv").is_file() and len(list((out / "mattes" / "chair").glob("*.png"))) == 5


@pytest.mark.parametrize(("first", "second", "named"), [
    ("A", "a", "frames 'A' and 'a'"),
    ("\u00e9", "e\u0301", "frames '\u00e9' and 'e\\u0301'"),
], ids=["letter case", "Unicode normalisation"])
def test_frame_names_alike_but_for_case_or_normalisation_are_refused_naming_both(tmp_path, first, second, named):
    """export_masks({"A": m, "a": m}) wrote A.png and a.png, one file on macOS or Windows, where `run` refuses such
    frames (eighth hostile round)."""
    mask = np.ones((4, 4), np.uint8)
    with pytest.raises(XMemPPError, match=re.escape(named) + " are named alike but for letter case"):
        export_masks({first: mask, second: mask}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_frame_name_that_is_not_utf8_is_refused_for_json_before_anything_is_written(tmp_path):
    """A frame named b'\\xff00000.png' ended `export` in an internal UnicodeEncodeError writing coco.json, its
    Annotations/ already written."""
    masks = {os.fsdecode(b"\xff") + name: mask for name, mask in three_object_masks().items()}
    with pytest.raises(XMemPPError, match=r"not UTF-8 text, and coco names frames in JSON"):
        export_masks(masks, tmp_path / "export", ["davis", "coco"], NAMES)
    assert not (tmp_path / "export" / "Annotations").exists()
    export_masks(masks, tmp_path / "export", ["davis", "mattes"], NAMES)  # these name frames as files: written


@pytest.mark.parametrize("video_name", ["\udcff", os.fsdecode(b"clip\xe9")])
def test_a_video_name_that_is_not_utf8_is_refused_for_json_before_anything_is_written(tmp_path, video_name):
    """`export --video-name $'\\udcff'`, or a run folder named in Latin-1 bytes (the default name), ended in an
    internal UnicodeEncodeError writing coco.json (eighth hostile round)."""
    with pytest.raises(XMemPPError, match=r"the video name .* is not UTF-8 text, and coco and youtube-vis name the "
                                          r"video in JSON text: give another name \(--video-name\)"):
        export_masks(three_object_masks(), tmp_path / "export", ["davis", "coco", "youtube-vis"], NAMES,
                     video_name=video_name)
    assert not (tmp_path / "export" / "Annotations").exists()


def test_a_video_name_that_is_no_text_is_refused_naming_its_type(tmp_path):
    with pytest.raises(XMemPPError, match="the video name must be text \\(a str\\), got int"):
        export_masks(three_object_masks(), tmp_path / "export", ["coco"], NAMES, video_name=5)


@pytest.mark.parametrize("formats", [["mattes"], ["coco"]])
def test_an_object_name_holding_a_lone_surrogate_is_refused_before_anything_is_written(tmp_path, formats):
    """A caller's object name '\\ud800' ended in UnicodeEncodeError making the mattes' folder or writing coco.json
    (eighth hostile round)."""
    with pytest.raises(XMemPPError, match="the name of object 1 holds a lone surrogate"):
        export_masks(three_object_masks(), tmp_path / "export", ["davis", *formats], {1: "chair\ud800"})
    assert not (tmp_path / "export" / "Annotations").exists()


def _cli_run(frames: Path, masks: Path, out: Path, checkpoint: Path) -> Path:
    from xmempp.cli import main

    assert main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(out), "--weights",
                 str(checkpoint), "--size", "96", "--quiet", "--no-overlay", "--frames", "0"]) == 0
    return out


@pytest.mark.parametrize("to", ["dataset", "dataset link", "Annotations", "inside Annotations", "JPEGImages"])
def test_an_export_into_the_runs_own_inputs_is_refused_even_with_overwrite(square_clip, tmp_path, checkpoint, capsys,
                                                                           to):
    """`export --run out --to <the folder holding the run's Annotations/> --overwrite --formats davis` replaced
    the person's hand annotations with the run's masks, exit 0 (issue 16, round five)."""
    from xmempp.cli import main

    frames, masks = square_clip  # tmp_path/JPEGImages and tmp_path/Annotations, as a DAVIS folder holds them
    run = _cli_run(frames, masks, tmp_path / "out", checkpoint)
    (tmp_path / "link").symlink_to(tmp_path)
    to = {"dataset": tmp_path, "dataset link": tmp_path / "link", "Annotations": masks,
          "inside Annotations": masks / "sub", "JPEGImages": frames}[to]
    before = {path: path.read_bytes() for folder in (masks, frames) for path in folder.iterdir()}
    assert main(["export", "--run", str(run), "--to", str(to), "--overwrite", "--formats", "davis,coco"]) == 1
    error = capsys.readouterr().err
    assert "choose an export folder apart from the run's inputs" in error and str(masks.parent) in error, error
    assert {path: path.read_bytes() for folder in (masks, frames) for path in folder.iterdir()} == before


def test_overwrite_refuses_a_folder_no_export_wrote_naming_it(tmp_path):
    """--overwrite replaced any Annotations/ in --to, someone's hand-made masks included."""
    theirs = tmp_path / "to" / "Annotations"
    theirs.mkdir(parents=True)
    (theirs / "00000.png").write_bytes(b"their mask")
    with pytest.raises(XMemPPError, match=re.escape(f"{theirs} is not an export's")):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"], overwrite=True)
    assert [path.read_bytes() for path in theirs.iterdir()] == [b"their mask"]


def test_overwrite_replaces_what_an_earlier_export_wrote_or_an_empty_folder(tmp_path):
    (tmp_path / "to" / "mattes").mkdir(parents=True)  # empty: nothing of anyone's to lose
    export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"], overwrite=True)
    export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"], {1: "renamed"}, overwrite=True)
    assert (tmp_path / "to" / "mattes" / "renamed").is_dir()


def test_overwrite_puts_the_new_entry_in_place_before_it_removes_the_earlier_one(tmp_path, monkeypatch, caplog):
    """--overwrite removed the earlier Annotations/ first: a file it could not remove (or Ctrl-C meanwhile) left 51
    of 60 masks and no new entry (twenty-fifth hostile round). What cannot be removed now stays aside, hidden."""
    import logging

    from xmempp import outputs

    export_masks(three_object_masks(), tmp_path / "to", ["davis"])
    real_remove_tree = outputs.remove_tree

    def stuck(name, dir_fd, spare=None):
        if name.startswith(".Annotations"):  # the earlier entry, moved aside (the staging folder is in place)
            raise PermissionError(13, "Permission denied", name)
        return real_remove_tree(name, dir_fd, spare=spare)

    monkeypatch.setattr(outputs, "remove_tree", stuck)
    with caplog.at_level(logging.WARNING):
        export_masks(three_object_masks(count=7), tmp_path / "to", ["davis"], overwrite=True)
    assert len(list((tmp_path / "to" / "Annotations").iterdir())) == 7
    assert "could not be removed whole (permission denied): remove it yourself" in caplog.text


def test_overwrite_of_an_earlier_export_holding_a_mount_point_is_refused_and_empties_nothing(tmp_path, monkeypatch):
    """A user's folder bind-mounted inside an earlier export's mattes/ would be emptied by the removal of the entry
    it replaces (twenty-fourth hostile round, as evaluate's copied rounds)."""
    import xmempp.exports

    export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"])
    users = tmp_path / "to" / "mattes" / "theirs"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    monkeypatch.setattr(xmempp.exports, "mount_risk",
                        lambda folder: f"it holds a mount point ({users})" if folder.name == "mattes" else None)
    with pytest.raises(XMemPPError, match=re.escape(f"cannot replace {tmp_path / 'to' / 'mattes'}: it holds a "
                                                    f"mount point ({users})")):
        export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"], overwrite=True)
    assert (users / "keep.txt").read_text() == "mine"


def test_relative_paths_from_a_current_folder_that_was_removed_are_refused_in_words(tmp_path, monkeypatch):
    """With the process's current folder removed, export_masks("rel", ...) raised a bare FileNotFoundError from
    os.path.abspath (twenty-sixth hostile round)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(XMemPPError, match="the current folder no longer exists"):
        export_masks("run/masks", tmp_path / "to", ["davis"])


def test_a_marker_nested_past_the_recursion_limit_lists_nothing(tmp_path):
    """A hand-edited xmempp-export.json of arrays nested 100,000 deep ended in 'unexpected internal failure
    (RecursionError ...); this is a bug' (sixth hostile round): it lists nothing, so --overwrite refuses the entry."""
    theirs = tmp_path / "to" / "Annotations"
    theirs.mkdir(parents=True)
    (theirs / "00000.png").write_bytes(b"their mask")
    (tmp_path / "to" / "xmempp-export.json").write_text('{"entries": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(XMemPPError, match=re.escape("xmempp-export.json is not an xmempp export's list")):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"], overwrite=True)
    assert [path.read_bytes() for path in theirs.iterdir()] == [b"their mask"]


def test_a_marker_that_is_a_pipe_is_not_waited_on(tmp_path):
    """xmempp-export.json made a FIFO: the export waited for a writer forever (sixth hostile round). A marker that
    is no regular file is no export's: refused and kept, as a person's link at that name (fifty-sixth round)."""
    import threading

    (tmp_path / "to").mkdir()
    os.mkfifo(tmp_path / "to" / "xmempp-export.json")
    refused = []

    def export() -> None:
        try:
            export_masks(three_object_masks(), tmp_path / "to", ["davis"])
        except XMemPPError as error:
            refused.append(str(error))

    exporting = threading.Thread(target=export, daemon=True)
    exporting.start()
    exporting.join(timeout=30)
    if exporting.is_alive():  # let the blocked export go on, rather than leave the thread waiting
        os.close(os.open(tmp_path / "to" / "xmempp-export.json", os.O_WRONLY | os.O_NONBLOCK))
    assert not exporting.is_alive(), "the export waited on the FIFO"
    assert refused and "xmempp-export.json is not an xmempp export's list of entries" in refused[0], refused
    assert stat.S_ISFIFO(os.lstat(tmp_path / "to" / "xmempp-export.json").st_mode)
    # beside an earlier export's entry, with --overwrite: the pipe is named, not the entry it "does not list"
    # (fifty-seventh round, F3)
    (tmp_path / "to" / "Annotations").mkdir()
    (tmp_path / "to" / "Annotations" / "00000.png").write_bytes(b"a mask")
    with pytest.raises(XMemPPError, match=re.escape("xmempp-export.json is not an xmempp export's list of entries "
                                                    "(no regular file: a pipe, a device or a socket)")):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"], overwrite=True)
    assert (tmp_path / "to" / "Annotations" / "00000.png").read_bytes() == b"a mask"
    (tmp_path / "link").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "link" / "xmempp-export.json").symlink_to(tmp_path / "notes.txt")
    with pytest.raises(XMemPPError, match=re.escape("is not an xmempp export's list of entries (a link)")):
        export_masks(three_object_masks(), tmp_path / "link", ["davis"])
    assert (tmp_path / "link" / "xmempp-export.json").is_symlink() and (tmp_path / "notes.txt").read_text() == "mine"


def test_mattes_objects_csv_writes_formula_like_names_as_text_and_reads_them_back_exactly(tmp_path):
    """`=HYPERLINK(...)` was written as is into mattes/objects.csv, a formula in a spreadsheet (round five)."""
    from xmempp.exports import read_object_names

    names = {1: '=HYPERLINK("http://evil.example","x")', 2: "-left", 3: "'quoted"}
    export_masks(three_object_masks(), tmp_path, ["mattes"], names)
    with open(tmp_path / "mattes" / "objects.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["name"] for row in rows] == ["'" + name for name in names.values()]
    assert read_object_names(tmp_path / "mattes" / "objects.csv") == names


@pytest.mark.parametrize("looping", ["--run", "--to"])
def test_an_export_folder_that_is_a_symlink_loop_is_named(tmp_path, capsys, looping):
    from xmempp.cli import main

    masks = three_object_masks()
    (tmp_path / "masks").mkdir()
    for name, mask in masks.items():
        mask_image(mask, davis_palette()).save(tmp_path / "masks" / f"{name}.png")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a link to itself: following it never ends
    folders = {"--run": tmp_path / "masks", "--to": tmp_path / "export", looping: tmp_path / "loop"}
    assert main(["export", "--run", str(folders["--run"]), "--to", str(folders["--to"])]) == 1
    error = capsys.readouterr().err
    assert f"{tmp_path / 'loop'}" in error and "internal failure" not in error


def test_a_retry_with_overwrite_replaces_what_an_export_that_failed_half_way_wrote(tmp_path, monkeypatch):
    """A disk that filled after coco.json left it without xmempp-export.json, and every retry, --overwrite
    included, was refused as "coco.json is not an export's" (eighth hostile round)."""
    import errno

    from xmempp import exports

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(exports, "_write_davis", full)
        with pytest.raises(XMemPPError, match="no space left on the device"):
            export_masks(three_object_masks(), tmp_path / "to", ["coco", "davis"])
    assert (tmp_path / "to" / "coco.json").is_file() and not (tmp_path / "to" / "Annotations").exists()
    export_masks(three_object_masks(), tmp_path / "to", ["coco", "davis"], overwrite=True)
    assert json.loads((tmp_path / "to" / "xmempp-export.json").read_text())["entries"] == ["Annotations", "coco.json"]


def test_export_folders_get_the_mode_the_umask_gives(tmp_path):
    """Annotations/ and mattes/ were 0700 whatever the umask (tempfile.mkdtemp's staging renamed into place), so a
    group sharing the folder could not read an export (eighth hostile round)."""
    previous = os.umask(0o027)
    try:
        export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"], NAMES)
    finally:
        os.umask(previous)
    assert {name: (tmp_path / "to" / name).stat().st_mode & 0o777 for name in ("Annotations", "mattes")} == \
        {"Annotations": 0o750, "mattes": 0o750}


def _finished_run(folder: Path) -> Path:
    from xmempp.outputs import Manifest, file_digest, write_manifest

    masks = _masks_folder(folder / "masks")
    digests = {path.stem: file_digest(path) for path in masks.iterdir()}
    write_manifest(folder, Manifest(sorted(digests), (40, 56), [0], 480, "w", "s").finish(digests))
    return folder


def test_an_export_of_a_run_refuses_a_mask_deleted_by_hand_naming_its_frame(tmp_path):
    """A finished run's masks/00003.png deleted by hand: 4 frames of 5 were exported without a word, where
    suggest refuses the folder (eighth hostile round)."""
    run = _finished_run(tmp_path / "run")
    (run / "masks" / "00003.png").unlink()
    with pytest.raises(XMemPPError, match=r"the mask of frame 00003 is missing from .*masks, though the run that "
                                          r"wrote .*run made it \(manifest.json lists the frame\)"):
        export_masks(run, tmp_path / "to", ["davis"])
    assert not (tmp_path / "to" / "Annotations").exists()


def test_an_export_of_a_run_refuses_a_png_that_is_the_mask_of_none_of_its_frames(tmp_path):
    """An extra.png put into a finished run's masks/ was exported as a frame (eighth hostile round)."""
    run = _finished_run(tmp_path / "run")
    (run / "masks" / "extra.png").write_bytes((run / "masks" / "00000.png").read_bytes())
    with pytest.raises(XMemPPError, match=r"extra\.png is the mask of no frame of the run that wrote .*run \(its "
                                          r"manifest.json lists 5 frames, not this one\)"):
        export_masks(run / "masks", tmp_path / "to", ["davis"])
    assert not (tmp_path / "to" / "Annotations").exists()


def test_a_folder_of_masks_without_a_manifest_exports_every_png_in_it(tmp_path):
    masks = _masks_folder(tmp_path / "masks")
    (masks / "extra.png").write_bytes((masks / "00000.png").read_bytes())
    export_masks(masks, tmp_path / "to", ["davis"])
    assert len(list((tmp_path / "to" / "Annotations").iterdir())) == 6


def test_a_name_the_file_system_cannot_encode_becomes_an_ascii_folder(monkeypatch):
    """Under LC_ALL=C without Python's UTF-8 mode, file names are ASCII: a matte folder for `café 🎬` ended in
    'unexpected internal failure (UnicodeEncodeError)' (eleventh hostile round)."""
    import sys

    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    assert safe_folder_names({1: "café 🎬", 2: "chair"}) == {1: "caf_ _", 2: "chair"}


@pytest.mark.parametrize("object_id", [-1, 0, 256, 10**30])
def test_object_names_for_ids_no_mask_can_hold_are_refused(tmp_path, object_id):
    """{-1: "x"}, {256: "x"} and {10**30: "x"} each wrote a category, an empty matte folder and an objects.csv row
    (twenty-eighth hostile round); the CLI's --names refused them already."""
    with pytest.raises(XMemPPError, match=f"object_names: {object_id} is no object id; ids are 1 to 255"):
        export_masks({"f0": np.ones((4, 4), np.uint8)}, tmp_path / "out", formats=["mattes"],
                     object_names={object_id: "x"})
    assert not (tmp_path / "out").exists()


def test_an_object_named_like_the_mattes_map_file_gets_a_folder_of_its_own(tmp_path):
    """An object named "objects.csv" had its matte folder take the map file's name: the export failed with "it is a
    folder, not a file" (twenty-eighth hostile round)."""
    export_masks({"f0": np.ones((4, 4), np.uint8)}, tmp_path / "out", formats=["mattes"],
                 object_names={1: "objects.csv"})
    assert (tmp_path / "out" / "mattes" / "objects.csv").is_file()
    assert (tmp_path / "out" / "mattes" / "objects.csv-1" / "f0.png").is_file()


@pytest.mark.parametrize("order", [["davis", "coco"], ["coco", "davis"]])
def test_an_export_folder_swapped_mid_export_for_a_link_to_a_users_folder_is_never_written_through(tmp_path,
                                                                                                 monkeypatch, order):
    """The export folder renamed away after its first entry and replaced by a symbolic link to a user's folder: the
    export replaced the user's coco.json there, or moved the user's Annotations/ aside and removed it, and said it
    had exported (thirtieth hostile round). It writes into the folder it held and checked, or stops saying why."""
    import xmempp.exports

    users = tmp_path / "users"
    (users / "Annotations").mkdir(parents=True)
    (users / "Annotations" / "00000.png").write_bytes(b"the user's own mask")
    (users / "coco.json").write_text("the user's own coco")
    out = tmp_path / "to"
    first_writer = {"davis": "_write_davis", "coco": "coco_document"}[order[0]]
    written_first = getattr(xmempp.exports, first_writer)

    def write_then_swap(*args, **kwargs):
        result = written_first(*args, **kwargs)
        out.rename(tmp_path / "to.moved")
        out.symlink_to(users, target_is_directory=True)
        return result

    monkeypatch.setattr(xmempp.exports, first_writer, write_then_swap)
    with pytest.raises(XMemPPError, match=f"the export folder {out} was replaced or moved while xmempp was using it"):
        export_masks(three_object_masks(), out, order)
    assert sorted(p.name for p in users.rglob("*")) == ["00000.png", "Annotations", "coco.json"]
    assert (users / "Annotations" / "00000.png").read_bytes() == b"the user's own mask"
    assert (users / "coco.json").read_text() == "the user's own coco"
    assert not [p.name for p in (tmp_path / "to.moved").iterdir() if p.name.startswith(".")]  # no staging left


# ----- the staging folder and the earlier entry, changed mid-export (thirty-first hostile round) -----------------
def users_folder(tmp_path: Path) -> Path:
    users = tmp_path / "users"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    return users


def test_a_folder_bind_mounted_on_the_staging_folder_mid_export_is_never_emptied(tmp_path, monkeypatch):
    """The rename of a staging folder with a mount on it failed (EBUSY), and the clean-up's rmtree then emptied the
    user's folder mounted there."""
    import subprocess

    from tests.test_outputs import bind_mount
    from xmempp import exports

    users, mounted = users_folder(tmp_path), []
    write_davis = exports._write_davis

    def mounting(masks, staging, palette):
        write_davis(masks, staging, palette)
        bind_mount(users, getattr(staging, "path", staging))
        mounted.append(getattr(staging, "path", staging))

    monkeypatch.setattr(exports, "_write_davis", mounting)
    try:
        with pytest.raises(XMemPPError):
            export_masks(three_object_masks(), tmp_path / "to", ["davis"])
        assert (users / "keep.txt").read_text() == "mine"
    finally:
        for path in mounted:
            subprocess.run(["umount", str(path)], check=True)
    assert sorted(os.listdir(users)) == ["keep.txt"]
    assert not (tmp_path / "to" / "Annotations").exists()


def test_a_staging_folder_swapped_for_a_link_mid_export_is_never_written_through_nor_put_in_place(tmp_path,
                                                                                                  monkeypatch):
    """The staging folder, swapped for a link to a user's folder while the masks were written, got the masks
    written through it, and the link was renamed into place as Annotations/; the export said it had finished."""
    from xmempp import exports

    users = users_folder(tmp_path)
    write_davis = exports._write_davis

    def swapping(masks, staging, palette):
        where = getattr(staging, "path", staging)
        where.rename(tmp_path / "moved-away")
        where.symlink_to(users)
        write_davis(masks, staging, palette)

    monkeypatch.setattr(exports, "_write_davis", swapping)
    with pytest.raises(XMemPPError, match="staging folder .* was replaced or moved while xmempp wrote into it"):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"])
    assert sorted(os.listdir(users)) == ["keep.txt"]
    assert not os.path.lexists(tmp_path / "to" / "Annotations")


def test_a_folder_mounted_in_the_earlier_entry_after_the_check_stays_whole_on_overwrite(tmp_path, monkeypatch,
                                                                                       caplog):
    """export --overwrite: a user's folder bind-mounted inside the earlier Annotations/ after the mount check (seen
    here as a check that found nothing) was emptied with the earlier entry."""
    import logging
    import subprocess

    from tests.test_outputs import bind_mount
    from xmempp import exports

    users = users_folder(tmp_path)
    export_masks(three_object_masks(), tmp_path / "to", ["davis"])
    monkeypatch.setattr(exports, "mount_risk", lambda folder: None)
    bind_mount(users, tmp_path / "to" / "Annotations" / "theirs")
    mounted = tmp_path / "to" / "Annotations" / "theirs"
    try:
        with caplog.at_level(logging.WARNING):
            export_masks(three_object_masks(count=7), tmp_path / "to", ["davis"], overwrite=True)
        aside = [name for name in os.listdir(tmp_path / "to") if name.startswith(".Annotations")]
        assert len(aside) == 1 and os.listdir(tmp_path / "to" / aside[0]) == ["theirs"]
        mounted = tmp_path / "to" / aside[0] / "theirs"
        assert sorted(os.listdir(users)) == ["keep.txt"]
        assert "where a file system is mounted: that stays" in caplog.text
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
    assert len(list((tmp_path / "to" / "Annotations").glob("*.png"))) == 7
    assert (users / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("theirs", ['{"written_by": "my tool", "notes": "keep me"}', "my notes, not JSON\n"])
def test_someone_elses_file_named_like_the_export_list_is_refused_and_kept(tmp_path, theirs):
    """A person's (or another tool's) xmempp-export.json in the export folder was replaced by the export's list
    of entries without a word (thirty-second hostile round)."""
    (tmp_path / "to").mkdir()
    (tmp_path / "to" / "xmempp-export.json").write_text(theirs)
    with pytest.raises(XMemPPError, match=re.escape(f"{tmp_path / 'to' / 'xmempp-export.json'} is not an xmempp "
                                                    "export's list of entries")):
        export_masks(three_object_masks(), tmp_path / "to", ["coco"])
    assert (tmp_path / "to" / "xmempp-export.json").read_text() == theirs
    assert os.listdir(tmp_path / "to") == ["xmempp-export.json"]


def test_a_marker_linked_to_another_folders_marker_lists_nothing_here(tmp_path):
    """xmempp-export.json made a link to another export's marker listed that export's entries as this folder's:
    --overwrite then replaced a person's own Annotations/ here, which no export wrote (thirty-third hostile round)."""
    export_masks(three_object_masks(), tmp_path / "earlier", ["davis"])
    theirs = tmp_path / "to" / "Annotations"
    theirs.mkdir(parents=True)
    (theirs / "hand.png").write_text("precious")
    (tmp_path / "to" / "xmempp-export.json").symlink_to(tmp_path / "earlier" / "xmempp-export.json")
    with pytest.raises(XMemPPError, match=re.escape("xmempp-export.json is not an xmempp export's list of entries "
                                                    "(a link)")):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"], overwrite=True)
    assert os.listdir(theirs) == ["hand.png"] and (theirs / "hand.png").read_text() == "precious"


def test_an_earlier_entry_that_cannot_be_checked_for_mounts_is_refused_before_the_work(tmp_path, monkeypatch):
    """Without /proc, export --overwrite built the whole new entry in a staging folder, then refused the earlier one
    (whether a mount is in it cannot be told), and the staging copy stayed (thirty-fourth hostile round)."""
    import sys

    import xmempp.mounts
    from xmempp import exports

    export_masks(three_object_masks(), tmp_path / "to", ["davis"])
    monkeypatch.setattr(exports, "mount_risk", lambda folder: "whether a file system is mounted in it cannot be told")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(xmempp.mounts, "_mount_id", lambda descriptor: None)  # no /proc
    with pytest.raises(XMemPPError, match="cannot be told"):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"], overwrite=True)
    assert sorted(os.listdir(tmp_path / "to")) == ["Annotations", "xmempp-export.json"]


def test_an_entry_holding_an_input_the_run_read_is_refused_wherever_it_was_moved_or_spelled(tmp_path):
    """The manifest recorded `LINK/../va` made absolute (a folder that does not exist), and the check started from
    the recorded path: export --overwrite then removed the dataset's Annotations/ holding the run's annotations, as
    it did after the dataset was renamed (thirty-fifth hostile round)."""
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    annotations = tmp_path / "D" / "Annotations" / "va"
    annotations.mkdir(parents=True)
    (tmp_path / "D" / "Annotations" / "vb").mkdir()
    (tmp_path / "LZ").symlink_to(tmp_path / "D" / "Annotations" / "vb", target_is_directory=True)
    recorded = input_identities({"annotations": tmp_path / "LZ" / ".." / "va"})
    assert recorded["annotations"]["path"] == str(annotations)
    (tmp_path / "D").rename(tmp_path / "D2")
    with pytest.raises(XMemPPError, match="would replace the folder that holds the annotations the run read"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D2", ["davis"])


def test_an_export_folder_spelled_through_a_link_and_dotdot_is_judged_the_same_every_time(tmp_path):
    """`--to LINK/..` was refused or not depending on the order of a set of its two spellings (the hash seed), with a
    message naming a folder the export never writes into (thirty-fifth hostile round)."""
    from xmempp.exports import _refuse_writing_into_inputs

    frames = tmp_path / "ds" / "JPEGImages" / "va"
    frames.mkdir(parents=True)
    run = tmp_path / "run"
    (run / "overlay").mkdir(parents=True)
    (tmp_path / "LO").symlink_to(run / "overlay", target_is_directory=True)
    recorded = {"frames": {"path": str(frames), "device": os.stat(frames).st_dev, "inode": os.stat(frames).st_ino}}
    for _ in range(3):
        _refuse_writing_into_inputs(recorded, tmp_path / "LO" / "..", ["davis"])  # the run's folder: refused never


@pytest.mark.parametrize("read", ["a video file", "an annotation through a link"])
def test_an_entry_holding_a_file_the_run_read_is_refused_wherever_it_was_moved(tmp_path, read):
    """Only the input folders were recorded and looked for: export --overwrite removed the video file a run read
    from inside the entry it replaced, and an annotation the annotations folder linked to there, where the same
    frames as a folder were refused (thirty-sixth hostile round)."""
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    entry = tmp_path / "D" / "mattes"
    entry.mkdir(parents=True)
    annotations = tmp_path / "A"
    annotations.mkdir()
    if read == "a video file":
        (entry / "clip.mp4").write_bytes(b"the user's video")
        recorded = input_identities({"frames": entry / "clip.mp4", "annotations": annotations})
        expected = "holds the frames the run read"
    else:
        (entry / "mine.png").write_bytes(b"the user's mask")
        (annotations / "frame_000000.png").symlink_to(entry / "mine.png")
        recorded = input_identities({"frames": tmp_path / "clip.mp4", "annotations": annotations})
        expected = r"the annotations behind links \(frame_000000.png\) the run read"
    (tmp_path / "D").rename(tmp_path / "D2")  # found by device and inode, not by the path recorded
    with pytest.raises(XMemPPError, match=expected):
        _refuse_writing_into_inputs(recorded, tmp_path / "D2", ["mattes"])


def test_an_input_moved_into_an_entry_while_the_export_is_written_is_never_removed(square_clip, tmp_path, network,
                                                                                   monkeypatch):
    """The inputs were looked for in the earlier entry only before the new one was built: a folder of the run's
    frames moved into it meanwhile (about a second) was removed with it (thirty-sixth hostile round)."""
    from xmempp import exports, run_on_video

    frames, masks = square_clip
    run_on_video(frames, masks, tmp_path / "run", print_progress=False, network=network, size=64)
    export_masks(tmp_path / "run", tmp_path / "to", ["davis"])
    moved = tmp_path / "to" / "Annotations" / "frames"
    real_write = exports._write_davis

    def frames_moved_in_meanwhile(*args):
        frames.rename(moved)
        return real_write(*args)

    monkeypatch.setattr(exports, "_write_davis", frames_moved_in_meanwhile)
    with pytest.raises(XMemPPError, match="holds the frames the run read.*put there while the export was written"):
        export_masks(tmp_path / "run", tmp_path / "to", ["davis"], overwrite=True)
    assert sorted(os.listdir(moved)) == [f"frame_{i:06d}.jpg" for i in range(12)]


def test_an_input_moved_into_the_earlier_folder_once_it_was_looked_through_aside_stays(tmp_path, monkeypatch,
                                                                                       caplog):
    """An input moved into the earlier entry after its last look, aside, before the removal met it, was removed
    with it (forty-third hostile round: 3 times in 3). The removal leaves what must be kept, and says so."""
    from xmempp import outputs
    from xmempp.outputs import HeldFolder, identity

    (tmp_path / "entry" / "masks").mkdir(parents=True)
    (tmp_path / "entry" / "masks" / "0.png").write_bytes(b"an earlier export's")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "frame.jpg").write_bytes(b"precious")
    (tmp_path / "fresh").mkdir()
    kept = identity(tmp_path / "theirs")
    remove_tree = outputs.remove_tree

    def input_moved_in_meanwhile(name, dir_fd, spare=None):
        (tmp_path / "theirs").rename(tmp_path / name / "masks" / "theirs")
        return remove_tree(name, dir_fd, spare=spare)

    monkeypatch.setattr(outputs, "remove_tree", input_moved_in_meanwhile)
    with HeldFolder(tmp_path) as folder:
        folder.replace_with_folder("entry", "fresh", keep={kept})
    (aside,) = [name for name in os.listdir(tmp_path) if name.startswith(".entry.")]
    assert (tmp_path / aside / "masks" / "theirs" / "frame.jpg").read_bytes() == b"precious"
    assert not (tmp_path / aside / "masks" / "0.png").exists()
    assert f"stays: it holds {tmp_path / aside / 'masks' / 'theirs'}" in caplog.text


def test_a_link_to_proc_fd_at_the_top_of_an_input_folder_records_the_file_the_system_reached(tmp_path):
    """A link to /proc/PID/fd/N of a file whose name there was removed (it lives on under another name, elsewhere):
    the link's text was followed to the removed name's folder, and export --overwrite removed the file the run read
    (forty-third hostile round)."""
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    (tmp_path / "D" / "mattes").mkdir(parents=True)
    (tmp_path / "X").mkdir()
    (tmp_path / "X" / "keep.png").write_bytes(b"the user's mask")
    os.link(tmp_path / "X" / "keep.png", tmp_path / "D" / "mattes" / "keep.png")
    annotations = tmp_path / "A"
    annotations.mkdir()
    with open(tmp_path / "X" / "keep.png", "rb") as held:
        (tmp_path / "X" / "keep.png").unlink()  # /proc/self/fd/N now reads ".../X/keep.png (deleted)"
        (annotations / "frame_000000.png").symlink_to(f"/proc/{os.getpid()}/fd/{held.fileno()}")
        recorded = input_identities({"annotations": annotations})
    with pytest.raises(XMemPPError, match=r"the annotations behind links \(frame_000000.png\)"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["mattes"])


def test_a_bind_mount_in_an_input_folder_is_recorded_when_no_descriptor_is_left_to_tell_its_mount(tmp_path,
                                                                                                  monkeypatch):
    """Under `ulimit -n 8` the mount-id look ran out of descriptors and a file bind-mounted at the top of the
    annotations folder was recorded nowhere (forty-third hostile round): the table of mounts tells then."""
    from tests.test_outputs import bind_mounted
    from xmempp import outputs
    from xmempp.exports import _refuse_writing_into_inputs

    def no_descriptor_left(*args, **kwargs):
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    (tmp_path / "D" / "mattes").mkdir(parents=True)
    (tmp_path / "D" / "mattes" / "keep.png").write_bytes(b"the user's mask")
    annotations = tmp_path / "A"
    annotations.mkdir()
    (annotations / "frame_000001.png").write_bytes(b"")
    monkeypatch.setattr(outputs, "mounted_at", no_descriptor_left)
    with bind_mounted(tmp_path / "D" / "mattes" / "keep.png", annotations / "frame_000001.png"):
        recorded = outputs.input_identities({"annotations": annotations})
    with pytest.raises(XMemPPError, match=r"the annotations behind links \(frame_000001.png\)"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["mattes"])


@pytest.mark.parametrize("stopped_at", ["moving the earlier folder aside", "putting the new one in place"])
def test_a_stop_between_the_two_renames_puts_the_earlier_folder_back(tmp_path, monkeypatch, stopped_at):
    """A SIGTERM after the earlier entry went aside and before the new one took its name left no entry at all, and
    the earlier export (with a file a person had put in it) in a hidden folder nothing named (sixtieth hostile
    round, F4): the command said "each entry is whole". The earlier folder goes back to its name."""
    from xmempp import outputs
    from xmempp.outputs import HeldFolder

    (tmp_path / "entry").mkdir()
    (tmp_path / "entry" / "my_note.txt").write_text("mine")
    (tmp_path / "fresh").mkdir()
    renames = []
    real_replace = outputs.os.replace

    def stopped(source, destination, **kwargs):
        renames.append(source)
        if stopped_at == "putting the new one in place" and source == "fresh":
            raise KeyboardInterrupt  # as the command's SIGTERM handler raises, before the rename
        real_replace(source, destination, **kwargs)
        if stopped_at == "moving the earlier folder aside":
            raise KeyboardInterrupt  # just after it

    monkeypatch.setattr(outputs.os, "replace", stopped)
    with HeldFolder(tmp_path) as folder, pytest.raises(KeyboardInterrupt):
        folder.replace_with_folder("entry", "fresh")
    assert renames[0] == "entry"
    assert (tmp_path / "entry" / "my_note.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["entry", "fresh"]  # the staging folder is the caller's to remove


def test_a_second_stop_while_the_earlier_folder_goes_back_waits_for_it(tmp_path, monkeypatch):
    """Ctrl-C twice: the second came while the earlier folder was being put back, which it stopped; the entry was
    missing and the command said each entry is whole (sixty-first hostile round, F2)."""
    from xmempp import outputs
    from xmempp.outputs import HeldFolder

    (tmp_path / "entry").mkdir()
    (tmp_path / "entry" / "my_note.txt").write_text("mine")
    (tmp_path / "fresh").mkdir()
    real_rename, stops = outputs.os.rename, []

    def second_stop(*args, **kwargs):
        if not stops:
            stops.append("second")
            raise KeyboardInterrupt  # before the put-back's rename
        return real_rename(*args, **kwargs)

    def first_stop(source, destination, **kwargs):
        if source == "fresh":
            monkeypatch.setattr(outputs.os, "rename", second_stop)
            raise KeyboardInterrupt
        os.rename(source, destination, **kwargs)

    monkeypatch.setattr(outputs.os, "replace", first_stop)
    with HeldFolder(tmp_path) as folder, pytest.raises(KeyboardInterrupt):
        folder.replace_with_folder("entry", "fresh")
    assert stops == ["second"]
    assert (tmp_path / "entry" / "my_note.txt").read_text() == "mine"


def test_a_stop_just_after_the_new_folder_took_the_name_says_where_the_earlier_one_stays(tmp_path, monkeypatch,
                                                                                           caplog):
    """A stop that landed right after the new folder was renamed into place was said as "something was put at its
    name meanwhile; move it back yourself", which would have put the earlier one over the new export (sixty-second
    hostile round, F1); and four stops in a row ended the put-back unsaid (F2)."""
    from xmempp import outputs
    from xmempp.outputs import HeldFolder

    (tmp_path / "entry").mkdir()
    (tmp_path / "fresh").mkdir()
    real_replace, real_lstat, stops = outputs.os.replace, outputs.os.lstat, [0]

    def stopped_again(*args, **kwargs):  # three more stops, as the put-back looks
        if stops[0] < 3:
            stops[0] += 1
            raise KeyboardInterrupt
        return real_lstat(*args, **kwargs)

    def stopped_just_after(source, destination, **kwargs):
        real_replace(source, destination, **kwargs)
        if source == "fresh":
            monkeypatch.setattr(outputs.os, "lstat", stopped_again)
            raise KeyboardInterrupt

    monkeypatch.setattr(outputs.os, "replace", stopped_just_after)
    with HeldFolder(tmp_path) as folder, pytest.raises(KeyboardInterrupt):
        folder.replace_with_folder("entry", "fresh")
    monkeypatch.setattr(outputs.os, "lstat", real_lstat)
    (aside,) = [name for name in os.listdir(tmp_path) if name.startswith(".entry.")]
    assert stops == [3]
    assert (f"the earlier {tmp_path / 'entry'}, moved aside to {tmp_path / aside}, stays whole: stopped before it "
            "was removed") in caplog.text
    assert "move it back" not in caplog.text


def test_an_earlier_folder_that_cannot_go_back_is_named(tmp_path, monkeypatch, caplog):
    """A folder made at the entry's name between the two renames kept the earlier one from going back, hidden and
    unnamed (sixty-first hostile round, F2)."""
    from xmempp import outputs
    from xmempp.outputs import HeldFolder

    (tmp_path / "entry").mkdir()
    (tmp_path / "fresh").mkdir()
    real_replace = outputs.os.replace

    def someone_makes_the_name(source, destination, **kwargs):
        if source == "fresh":
            (tmp_path / "entry").mkdir()
            raise KeyboardInterrupt
        real_replace(source, destination, **kwargs)

    monkeypatch.setattr(outputs.os, "replace", someone_makes_the_name)
    with HeldFolder(tmp_path) as folder, pytest.raises(KeyboardInterrupt):
        folder.replace_with_folder("entry", "fresh")
    (aside,) = [name for name in os.listdir(tmp_path) if name.startswith(".entry.")]
    assert f"stays whole, moved aside to {tmp_path / aside}: something was put at its name" in caplog.text


def test_a_stop_while_the_replaced_folder_is_looked_through_names_where_it_stays(tmp_path, monkeypatch, caplog):
    """A stop after the new folder took the name, while the earlier one was looked through for the run's inputs,
    left it hidden and unnamed; retries never said it was there (sixty-first hostile round, F1)."""
    from xmempp import outputs
    from xmempp.outputs import HeldFolder, identity

    (tmp_path / "entry" / "notes").mkdir(parents=True)
    (tmp_path / "fresh").mkdir()
    (tmp_path / "frames").mkdir()

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs, "first_removed_with", stopped)
    with HeldFolder(tmp_path) as folder, pytest.raises(KeyboardInterrupt):
        folder.replace_with_folder("entry", "fresh", keep={identity(tmp_path / "frames")})
    (aside,) = [name for name in os.listdir(tmp_path) if name.startswith(".entry.")]
    assert (tmp_path / aside / "notes").is_dir()
    assert f"the earlier {tmp_path / 'entry'}, moved aside to {tmp_path / aside}, stays whole" in caplog.text


def test_a_folder_replaced_aside_that_holds_what_must_be_kept_stays_whole(tmp_path):
    """The last guard, should an input be moved into the earlier folder after every check: it stays aside, whole,
    and the caller is told where."""
    from xmempp.outputs import HeldFolder, identity

    (tmp_path / "entry" / "theirs").mkdir(parents=True)
    (tmp_path / "entry" / "theirs" / "frame.jpg").write_bytes(b"precious")
    (tmp_path / "fresh").mkdir()
    with HeldFolder(tmp_path) as folder, pytest.raises(XMemPPError, match="is kept there whole") as refused:
        folder.replace_with_folder("entry", "fresh", keep={identity(tmp_path / "entry" / "theirs")})
    aside = [name for name in os.listdir(tmp_path) if name.startswith(".entry.")]
    assert str(tmp_path / aside[0]) in str(refused.value)
    assert (tmp_path / aside[0] / "theirs" / "frame.jpg").read_bytes() == b"precious"


def test_an_annotation_bind_mounted_from_an_entry_is_never_removed_with_it(tmp_path):
    """An annotation the run read through a FILE bind mount from inside the entry replaced (`mount --bind
    D/mattes/mine.png A/frame_000000.png`) was deleted by export --overwrite: only links were recorded
    (thirty-seventh hostile round)."""
    from tests.test_outputs import bind_mounted
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    entry = tmp_path / "D" / "mattes"
    entry.mkdir(parents=True)
    (entry / "mine.png").write_bytes(b"the user's mask")
    (tmp_path / "A").mkdir()
    read = tmp_path / "A" / "frame_000000.png"
    read.write_bytes(b"")
    with bind_mounted(entry / "mine.png", read):
        recorded = input_identities({"annotations": tmp_path / "A"})
    assert "annotations behind links (frame_000000.png)" in recorded
    with pytest.raises(XMemPPError, match=r"holds the annotations behind links \(frame_000000.png\) the run read"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["mattes"])


def test_an_input_whose_names_are_spread_over_two_replaced_entries_is_refused_before_either_goes(tmp_path):
    """The run's video with one name in Annotations/ and one in mattes/ (hard links, its own name removed): export
    replaced the first entry, then refused the second saying the file was "put there while the export was
    written"; neither entry alone held every name (thirty-seventh hostile round)."""
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    (tmp_path / "D" / "mattes").mkdir(parents=True)
    (tmp_path / "D" / "Annotations").mkdir()
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"the user's video")
    recorded = input_identities({"frames": video})
    os.link(video, tmp_path / "D" / "mattes" / "a.mp4")
    os.link(video, tmp_path / "D" / "Annotations" / "b.mp4")
    video.unlink()
    with pytest.raises(XMemPPError, match="holds the frames the run read") as refused:
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["davis", "mattes"])
    assert "put there while" not in str(refused.value)
    _refuse_writing_into_inputs(recorded, tmp_path / "D", ["mattes"])  # its name in Annotations/ stays: no loss


def test_the_runs_folder_an_export_reads_through_a_bind_mount_from_inside_an_entry_is_never_removed(tmp_path):
    """`--run` a folder bind-mounted from inside the entry replaced: the entry's walk looked only for what the run
    read, never for the masks being read, and the masks were removed with the entry (thirty-seventh hostile
    round)."""
    from tests.test_outputs import bind_mounted

    export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"])
    inside = tmp_path / "to" / "mattes" / "hand"
    export_masks(three_object_masks(), tmp_path / "made", ["davis"])
    inside.mkdir()
    for mask in (tmp_path / "made" / "Annotations").iterdir():
        (inside / mask.name).write_bytes(mask.read_bytes())
    before = sorted(os.listdir(inside))
    with bind_mounted(inside, tmp_path / "reached") as reached, \
            pytest.raises(XMemPPError, match="would replace the folder that holds the run's folder this export reads"):
        export_masks(reached, tmp_path / "to", ["mattes"], overwrite=True)
    assert sorted(os.listdir(inside)) == before


def test_the_run_folder_moved_into_an_entry_while_the_export_is_written_is_never_removed(square_clip, tmp_path,
                                                                                        network, monkeypatch):
    """The run folder being exported, moved into the earlier entry while the new one was built, was removed with
    it: only what the run read was kept (thirty-seventh hostile round)."""
    from xmempp import exports, run_on_video

    frames, masks = square_clip
    run_on_video(frames, masks, tmp_path / "run", print_progress=False, network=network, size=64)
    export_masks(tmp_path / "run", tmp_path / "to", ["davis"])
    moved = tmp_path / "to" / "Annotations" / "run"
    real_write = exports._write_davis

    def run_moved_in_meanwhile(*args):
        result = real_write(*args)
        (tmp_path / "run").rename(moved)
        return result

    monkeypatch.setattr(exports, "_write_davis", run_moved_in_meanwhile)
    with pytest.raises(XMemPPError, match="holds the run's folder this export reads.*put there while the export"):
        export_masks(tmp_path / "run", tmp_path / "to", ["davis"], overwrite=True)
    assert len(os.listdir(moved / "masks")) == 12


@pytest.mark.parametrize("reached", ["a mask linked to a copy in the entry", "masks/ bind-mounted from the entry"])
def test_the_masks_an_export_reads_are_never_removed_with_an_entry_whatever_reaches_them(tmp_path, reached):
    """A run's mask replaced by a link to an identical copy kept in the entry replaced, or its masks/ a bind mount
    of a folder in that entry: export --overwrite read them, then removed them (thirty-eighth hostile round)."""
    from tests.test_outputs import bind_mounted

    export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"])
    export_masks(three_object_masks(), tmp_path / "run", ["davis"])
    masks = tmp_path / "run" / "Annotations"
    kept = tmp_path / "to" / "mattes" / "keep"
    kept.mkdir()
    for mask in masks.iterdir():
        (kept / mask.name).write_bytes(mask.read_bytes())
    before = sorted(os.listdir(kept))
    if reached == "a mask linked to a copy in the entry":
        (masks / before[1]).unlink()
        (masks / before[1]).symlink_to(kept / before[1])
        with pytest.raises(XMemPPError, match="holds a mask this export reads"):
            export_masks(tmp_path / "run", tmp_path / "to", ["mattes"], overwrite=True)
    else:
        with bind_mounted(kept, masks), pytest.raises(XMemPPError, match="holds the masks this export reads"):
            export_masks(tmp_path / "run", tmp_path / "to", ["mattes"], overwrite=True)
    assert sorted(os.listdir(kept)) == before


def test_a_file_to_keep_moved_into_an_entry_while_the_export_is_written_is_never_removed(tmp_path, monkeypatch):
    """A names file moved into the earlier entry while export --overwrite worked was read, then removed with the
    entry (thirty-eighth hostile round): the CLI gives it as a file to keep."""
    from xmempp import exports

    export_masks(three_object_masks(), tmp_path / "to", ["davis"])
    names = tmp_path / "names.csv"
    names.write_text("id,name\n1,chair\n")
    real_write = exports._write_davis

    def names_moved_in_meanwhile(*args):
        result = real_write(*args)
        names.rename(tmp_path / "to" / "Annotations" / "names.csv")
        return result

    monkeypatch.setattr(exports, "_write_davis", names_moved_in_meanwhile)
    with pytest.raises(XMemPPError, match="holds a file this export reads"):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"], overwrite=True, keep_files=[names])
    assert (tmp_path / "to" / "Annotations" / "names.csv").read_text() == "id,name\n1,chair\n"


def test_annotations_linked_into_an_entry_are_kept_whether_or_not_the_run_read_them(tmp_path):
    """Annotations linked from an earlier export's Annotations/ (the person's masks reused), of frames the run did
    not read (`--frames 0`), went with that entry: only the files read were recorded (thirty-eighth hostile round).
    A folder of many links into one folder is recorded once."""
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    export_masks(three_object_masks(), tmp_path / "D", ["davis"])
    annotations = tmp_path / "A"
    annotations.mkdir()
    for mask in (tmp_path / "D" / "Annotations").iterdir():
        (annotations / mask.name).symlink_to(mask)
    recorded = input_identities({"annotations": annotations})
    assert len(recorded) == 2  # the folder, and the one folder its links lead into
    with pytest.raises(XMemPPError, match=r"the annotations behind links \(.*\) the run read"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["davis"])


def test_a_runs_overlays_bind_mounted_from_an_entry_are_never_removed_with_it(square_clip, tmp_path, network):
    """A run's overlay/ a bind mount of a folder in the entry replaced: the overlays were removed with it
    (thirty-eighth hostile round)."""
    from tests.test_outputs import bind_mounted
    from xmempp import run_on_video

    frames, masks = square_clip
    export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"])
    kept = tmp_path / "to" / "mattes" / "overlays"
    kept.mkdir()
    with bind_mounted(kept, tmp_path / "run" / "overlay"):
        run_on_video(frames, masks, tmp_path / "run", print_progress=False, network=network, size=64)
        before = sorted(os.listdir(kept))
        with pytest.raises(XMemPPError, match="holds the run's outputs this export reads"):
            export_masks(tmp_path / "run", tmp_path / "to", ["mattes"], overwrite=True)
    assert sorted(os.listdir(kept)) == before and len(before) == 12


@pytest.mark.parametrize("reached", ["a link to a folder", "a folder bind-mounted there"])
def test_a_folder_reached_from_the_top_of_the_annotations_folder_is_never_removed_with_an_entry(tmp_path, reached):
    """A link to a folder, or a folder bind-mounted, in the annotations folder was not recorded: only links to
    files were, and export --overwrite removed the folder they reached (thirty-ninth hostile round)."""
    from tests.test_outputs import bind_mounted
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    export_masks(three_object_masks(), tmp_path / "D", ["davis", "mattes"])
    mine = tmp_path / "D" / "mattes" / "mine"
    mine.mkdir()
    (mine / "old.png").write_bytes(b"the user's mask")
    annotations = tmp_path / "A"
    annotations.mkdir()
    if reached == "a link to a folder":
        (annotations / "older").symlink_to(mine, target_is_directory=True)
        recorded = input_identities({"annotations": annotations})
    else:
        with bind_mounted(mine, annotations / "older"):
            recorded = input_identities({"annotations": annotations})
    with pytest.raises(XMemPPError, match=r"the annotations behind links \(older\) the run read"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["mattes"])


def test_links_in_an_input_folder_spelled_through_a_link_and_dotdot_are_recorded(tmp_path, monkeypatch):
    """`--masks L/../A`, L a link elsewhere: the links at the top of A were looked up as `./A/...` (the `..` taken
    away as text), found nowhere, and none was recorded (forty-first hostile round)."""
    from xmempp.outputs import input_identities

    (tmp_path / "D" / "mattes").mkdir(parents=True)
    (tmp_path / "D" / "mattes" / "keep.png").write_bytes(b"the user's mask")
    (tmp_path / "deep" / "sub").mkdir(parents=True)
    (tmp_path / "deep" / "A").mkdir()
    (tmp_path / "deep" / "A" / "frame_000000.png").symlink_to(tmp_path / "D" / "mattes" / "keep.png")
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "L").symlink_to(tmp_path / "deep" / "sub")
    monkeypatch.chdir(tmp_path / "cwd")
    recorded = input_identities({"annotations": Path("L/../A")})
    assert recorded["annotations behind links (frame_000000.png)"]["path"] == str(tmp_path / "D" / "mattes")


def test_a_run_that_cannot_read_the_mount_table_says_that_mounts_in_its_inputs_cannot_be_told(tmp_path, monkeypatch,
                                                                                             caplog):
    """Where /proc/self/mountinfo cannot be read, a file bind-mounted in the annotations folder was recorded
    nowhere, unsaid, and a later export removed its source (forty-first hostile round)."""
    import xmempp.outputs
    from xmempp.outputs import input_identities

    monkeypatch.setattr(xmempp.outputs, "mount_points", lambda: None)
    (tmp_path / "A").mkdir()
    input_identities({"annotations": tmp_path / "A"})
    assert "mount table (/proc/self/mountinfo) cannot be read" in caplog.text


def test_a_link_to_a_file_in_a_folder_above_the_input_records_the_file_so_exports_are_not_all_refused(tmp_path):
    """A link in the annotations folder to /.dockerenv recorded /, and every export anywhere was refused (thirty-
    ninth hostile round); left out, the file went with an export once the annotations folder was moved out
    (forty-first)."""
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    (tmp_path / "D" / "mattes").mkdir(parents=True)
    (tmp_path / "D" / "mattes" / "notes.txt").write_text("the user's")
    annotations = tmp_path / "D" / "mattes" / "A"
    annotations.mkdir()
    (annotations / "notes.txt").symlink_to(tmp_path / "D" / "mattes" / "notes.txt")
    recorded = input_identities({"annotations": annotations})
    assert [record["path"] for record in recorded.values()] == [str(annotations),
                                                                str(tmp_path / "D" / "mattes" / "notes.txt")]
    _refuse_writing_into_inputs(recorded, tmp_path / "elsewhere", ["mattes"])  # no folder above it is refused
    annotations.rename(tmp_path / "A")  # moved out: the entry now holds only the file the run read
    with pytest.raises(XMemPPError, match=r"the annotations behind links \(notes.txt\) the run read"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["mattes"])


@pytest.mark.parametrize("entry", ["coco.json", "youtube_vis.json"])
def test_a_names_file_at_a_file_entrys_path_is_never_replaced_by_the_export(tmp_path, entry):
    """`export --names D/coco.json --formats coco --overwrite` read the names file, then replaced it with the COCO
    JSON: only folder entries were checked for what the export reads (fortieth hostile round)."""
    fmt = {"coco.json": "coco", "youtube_vis.json": "youtube-vis"}[entry]
    export_masks(three_object_masks(), tmp_path / "D", [fmt])
    names = tmp_path / "D" / entry
    names.write_text("id,name\n1,chair\n")
    with pytest.raises(XMemPPError, match=f"would replace a file this export reads, .*{entry}"):
        export_masks(three_object_masks(), tmp_path / "D", [fmt], overwrite=True, keep_files=names)
    assert names.read_text() == "id,name\n1,chair\n"
    export_masks(three_object_masks(), tmp_path / "D", [fmt], overwrite=True)  # not kept: replaced, as asked


def test_keep_files_takes_one_path_or_several_and_refuses_anything_else(tmp_path):
    """keep_files="D/names.csv" was kept as the files 'D', '/', ...: the names file was removed; None or a number
    gave a raw TypeError (thirty-ninth hostile round)."""
    export_masks(three_object_masks(), tmp_path / "to", ["davis"])
    names = tmp_path / "to" / "Annotations" / "names.csv"
    names.write_text("id,name\n1,chair\n")
    with pytest.raises(XMemPPError, match="holds a file this export reads"):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"], overwrite=True, keep_files=str(names))
    with pytest.raises(XMemPPError, match="keep_files must be a path, or a list of paths"):
        export_masks(three_object_masks(), tmp_path / "to", ["davis"], overwrite=True, keep_files=None)
    assert names.read_text() == "id,name\n1,chair\n"


def test_the_runs_keys_linked_into_an_entry_are_kept_though_its_overlay_folder_cannot_be_listed(square_clip, tmp_path,
                                                                                                network, monkeypatch):
    """overlay/ a link to a folder that cannot be listed: not even the run's manifest or keys were kept, and the
    keys moved into the entry replaced and reached back through a link were removed (fortieth hostile round)."""
    from xmempp import run_on_video

    frames, masks = square_clip
    run_on_video(frames, masks, tmp_path / "run", print_progress=False, network=network, size=64)
    export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"])
    shutil.rmtree(tmp_path / "run" / "overlay")
    unlistable = tmp_path / "unlistable"
    unlistable.mkdir()
    (tmp_path / "run" / "overlay").symlink_to(unlistable)
    moved = tmp_path / "to" / "mattes" / "kept.bin"
    (tmp_path / "run" / "keys.npy").rename(moved)
    (tmp_path / "run" / "keys.npy").symlink_to(moved)
    listing = Path.iterdir

    def refused_for_the_overlay(folder):
        if folder == tmp_path / "run" / "overlay":
            raise PermissionError(13, "Permission denied", str(folder))
        return listing(folder)

    monkeypatch.setattr(Path, "iterdir", refused_for_the_overlay)
    with pytest.raises(XMemPPError, match="holds the run's outputs this export reads"):
        export_masks(tmp_path / "run", tmp_path / "to", ["mattes"], overwrite=True)
    assert moved.is_file()


def test_an_overlay_of_the_run_linked_into_an_entry_is_never_removed_with_it(square_clip, tmp_path, network):
    """One overlay of the run moved into the entry replaced and reached back through a link was removed
    (thirty-ninth hostile round)."""
    from xmempp import run_on_video

    frames, masks = square_clip
    run_on_video(frames, masks, tmp_path / "run", print_progress=False, network=network, size=64)
    export_masks(three_object_masks(), tmp_path / "to", ["davis", "mattes"])
    overlay = tmp_path / "run" / "overlay" / "frame_000003.jpg"
    moved = tmp_path / "to" / "mattes" / "frame_000003.jpg"
    overlay.rename(moved)
    overlay.symlink_to(moved)
    with pytest.raises(XMemPPError, match="holds the run's outputs this export reads"):
        export_masks(tmp_path / "run", tmp_path / "to", ["mattes"], overwrite=True)
    assert moved.is_file()


def test_an_annotation_bind_mounted_in_the_annotations_folder_is_recorded_read_or_not(tmp_path):
    """An annotation of a frame the run did not read, a file bind-mounted from an export's entry, was not recorded:
    export --overwrite removed its source (thirty-ninth hostile round)."""
    from tests.test_outputs import bind_mounted
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    export_masks(three_object_masks(), tmp_path / "D", ["mattes"])
    (tmp_path / "D" / "mattes" / "mine.png").write_bytes(b"the user's mask")
    annotations = tmp_path / "A"
    annotations.mkdir()
    (annotations / "frame_000003.png").write_bytes(b"")
    with bind_mounted(tmp_path / "D" / "mattes" / "mine.png", annotations / "frame_000003.png"):
        recorded = input_identities({"annotations": annotations})
    with pytest.raises(XMemPPError, match=r"the annotations behind links \(frame_000003.png\) the run read"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["mattes"])


def test_a_link_into_a_folder_that_is_gone_is_passed_over_as_a_loop_is(tmp_path):
    """A stale link (`Thumbs.db -> /mnt/old-disk/x`, its folder gone) among the annotations made run, batch and
    evaluate fail as "a bug" (TypeError; fortieth hostile round)."""
    from xmempp.outputs import input_identities

    annotations = tmp_path / "A"
    annotations.mkdir()
    (annotations / "Thumbs.db").symlink_to(tmp_path / "old-disk" / "gone" / "x")
    assert list(input_identities({"annotations": annotations})) == ["annotations"]


def test_an_annotation_linked_to_a_file_bind_mount_is_recorded_itself(tmp_path):
    """`A/frame_000000.png -> elsewhere/f.png`, with an export entry's file bind-mounted at elsewhere/f.png: only
    the folder `elsewhere` was recorded, and export --overwrite removed the entry's file (fortieth hostile round)."""
    from tests.test_outputs import bind_mounted
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    export_masks(three_object_masks(), tmp_path / "D", ["mattes"])
    (tmp_path / "D" / "mattes" / "keep.png").write_bytes(b"the user's mask")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f.png").write_bytes(b"")
    annotations = tmp_path / "A"
    annotations.mkdir()
    (annotations / "frame_000000.png").symlink_to(tmp_path / "elsewhere" / "f.png")
    with bind_mounted(tmp_path / "D" / "mattes" / "keep.png", tmp_path / "elsewhere" / "f.png"):
        recorded = input_identities({"annotations": annotations})
    with pytest.raises(XMemPPError, match=r"the annotations behind links \(frame_000000.png\) #\d+ the run read"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["mattes"])


def test_an_annotation_linked_past_path_max_is_recorded_by_itself(tmp_path):
    """A link (through a second link) to a file whose whole path is past PATH_MAX: the system follows it and the
    run reads it, but its folder could not be told, and it was not recorded at all (fortieth hostile round)."""
    from xmempp.outputs import input_identities

    deep = tmp_path / "D" / "mattes"
    deep.mkdir(parents=True)
    descriptor = os.open(deep, os.O_RDONLY)
    try:
        for _ in range(25):  # 25 levels of 200-character names: past PATH_MAX, made one level at a time
            os.mkdir("d" * 200, dir_fd=descriptor)
            inner = os.open("d" * 200, os.O_RDONLY, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = inner
        with open(os.open("keep.png", os.O_WRONLY | os.O_CREAT, dir_fd=descriptor), "wb") as kept:
            kept.write(b"the user's mask")
        kept_identity = os.stat("keep.png", dir_fd=descriptor)
    finally:
        os.close(descriptor)
    hop = tmp_path / "hop"
    hop.symlink_to(deep.joinpath(*["d" * 200] * 12))
    annotations = tmp_path / "A"
    annotations.mkdir()
    (annotations / "frame_000000.png").symlink_to(hop.joinpath(*["d" * 200] * 13, "keep.png"))
    recorded = input_identities({"annotations": annotations})
    assert (kept_identity.st_dev, kept_identity.st_ino) in {(r["device"], r["inode"]) for r in recorded.values()}


def test_what_is_bind_mounted_in_an_input_folder_is_recorded_by_its_absolute_path(tmp_path, monkeypatch):
    """A mount at the top of an input folder given relative was recorded as the run spelled it, and an export
    from another folder named a path relative to the run's (fortieth hostile round)."""
    from tests.test_outputs import bind_mounted
    from xmempp.outputs import input_identities

    (tmp_path / "extras").mkdir()
    (tmp_path / "A" / "extras").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with bind_mounted(tmp_path / "extras", tmp_path / "A" / "extras"):
        recorded = input_identities({"annotations": Path("A")})
    assert recorded["annotations behind links (extras)"]["path"] == str(tmp_path / "A" / "extras")


def test_a_loop_of_links_in_the_annotations_folder_does_not_stop_the_look_at_the_others(tmp_path):
    """`ln -s l1 l1` among the annotations stopped the look at every link after it, silently: a later link's
    target was removed by export --overwrite (thirty-ninth hostile round)."""
    from xmempp.outputs import input_identities

    (tmp_path / "D" / "mattes").mkdir(parents=True)
    (tmp_path / "D" / "mattes" / "mine.png").write_bytes(b"x")
    annotations = tmp_path / "A"
    annotations.mkdir()
    for name in ("a", "c", "e", "g"):  # loops, whatever order the folder lists them in
        (annotations / name).symlink_to(annotations / name)
    (annotations / "d.png").symlink_to(tmp_path / "D" / "mattes" / "mine.png")
    assert "annotations behind links (d.png)" in input_identities({"annotations": annotations})


@pytest.mark.parametrize("mounted", ["a file", "a folder", "a folder a link leads into"])
def test_what_another_mount_namespace_mounts_in_an_input_folder_read_through_its_proc_root_is_recorded(tmp_path,
                                                                                                     mounted):
    """Annotations read through /proc/PID/root of a process in another mount namespace: what is bind-mounted there
    is not in this process's table of mounts, and the real path of /proc/PID/root is this namespace's /. A file or
    folder mounted at the top of the annotations folder there was not recorded, and a link into a folder mounted
    there was recorded as the folder of that name here; export --overwrite then removed what the run read
    (forty-second hostile round)."""
    from xmempp.exports import _refuse_writing_into_inputs
    from xmempp.outputs import input_identities

    mattes = tmp_path / "D" / "mattes"
    (mattes / "keepdir").mkdir(parents=True)
    (mattes / "keep.png").write_bytes(b"the user's mask")
    (mattes / "keepdir" / "notes.txt").write_text("the user's notes")
    annotations = tmp_path / "A"
    annotations.mkdir()
    (annotations / "frame_000000.png").write_bytes(b"a mask")
    if mounted == "a file":
        (annotations / "frame_000001.png").write_bytes(b"")
        binds = [(mattes / "keep.png", annotations / "frame_000001.png")]
    elif mounted == "a folder":
        (annotations / "extra").mkdir()
        binds = [(mattes / "keepdir", annotations / "extra")]
    else:
        (tmp_path / "elsewhere").mkdir()  # here an empty folder; there, the user's mattes
        (annotations / "frame_000001.png").unlink(missing_ok=True)
        binds = [(mattes, tmp_path / "elsewhere")]
    with another_mount_namespace(*binds) as pid:
        if mounted == "a folder a link leads into":
            (annotations / "frame_000001.png").symlink_to(f"/proc/{pid}/root{tmp_path}/elsewhere/keep.png")
        recorded = input_identities({"annotations": Path(f"/proc/{pid}/root{annotations}")})
    with pytest.raises(XMemPPError, match=r"the annotations behind links \(.*\) the run read"):
        _refuse_writing_into_inputs(recorded, tmp_path / "D", ["mattes"])


def test_a_link_to_a_folder_through_another_namespaces_proc_root_is_recorded_by_the_path_the_system_took(tmp_path):
    """A link at the top of the annotations folder to a folder through /proc/PID/root of another mount namespace
    was recorded under this namespace's path of the same spelling, an empty folder here, and export's refusal
    named it (forty-third hostile round)."""
    from xmempp.outputs import input_identities

    (tmp_path / "D" / "mattes").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()  # here empty; there, the user's mattes
    annotations = tmp_path / "A"
    annotations.mkdir()
    with another_mount_namespace((tmp_path / "D" / "mattes", tmp_path / "elsewhere")) as pid:
        (annotations / "extra").symlink_to(f"/proc/{pid}/root{tmp_path}/elsewhere", target_is_directory=True)
        recorded = input_identities({"annotations": annotations})
    assert recorded["annotations behind links (extra)"]["path"] == f"/proc/{pid}/root{tmp_path}/elsewhere"
    assert (recorded["annotations behind links (extra)"]["inode"] == os.stat(tmp_path / "D" / "mattes").st_ino)


def test_an_export_folder_that_is_a_pipe_or_a_device_is_named_as_no_folder_not_as_a_file(tmp_path):
    """`export --to` a FIFO or /dev/null said "is a file" (fifty-third hostile round, F4); neither is waited on."""
    masks = {"00000": np.zeros((4, 4), np.uint8)}
    os.mkfifo(tmp_path / "fifo")
    for out in (tmp_path / "fifo", Path("/dev/null")):
        with pytest.raises(XMemPPError, match=r"is no folder \(a pipe, a device or a socket\): choose a folder"):
            export_masks(masks, out)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(XMemPPError, match=r"notes\.txt is a file: choose a folder"):
        export_masks(masks, tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("left_by", ["an export killed while it built the entry", "a person's own folder made since"])
def test_overwrite_replaces_only_the_very_entry_an_export_put_in_place(tmp_path, left_by):
    """An export killed with SIGKILL while it built Annotations/ left the marker listing it, never put in place; a
    folder a person later made there was taken for the export's, and `--overwrite` deleted it, exit 0 (fifty-eighth
    hostile round, F1). The marker records the device and inode of what each export put in place: anything else at
    that name is someone's."""
    out = tmp_path / "to"
    if left_by == "an export killed while it built the entry":
        staging = out / ".Annotations.1a2b.tmp"  # what the killed export was building, and left
        staging.mkdir(parents=True)
        built = os.stat(staging)
        (out / "xmempp-export.json").write_text(json.dumps({
            "written_by": "xmempp export", "entries": ["Annotations"],
            "identities": {"Annotations": [[built.st_dev, built.st_ino, ""]]}}))
    else:
        export_masks(three_object_masks(), out, ["davis"])
        shutil.rmtree(out / "Annotations")
    (out / "Annotations").mkdir()
    (out / "Annotations" / "gt.png").write_bytes(b"my ground truth")
    with pytest.raises(XMemPPError, match=re.escape(f"{out / 'Annotations'} is not an export's: {out / 'xmempp-export.json'}"
                                                    ", which every export writes, lists that name, but what is there "
                                                    "is not what an export put there")):
        export_masks(three_object_masks(), out, ["davis"], overwrite=True)
    assert (out / "Annotations" / "gt.png").read_bytes() == b"my ground truth"


def test_an_entry_an_export_put_in_place_is_replaced_by_the_next_and_the_marker_follows_it(tmp_path):
    """The marker lists each entry with what is there now: a retry, and a marker of an xmempp before the identities
    (names alone), replace what the export wrote."""
    out = tmp_path / "to"
    export_masks(three_object_masks(), out, ["davis", "coco"])
    export_masks(three_object_masks(), out, ["davis", "coco"], overwrite=True)
    marker = json.loads((out / "xmempp-export.json").read_text())
    assert marker["entries"] == ["Annotations", "coco.json"]
    for name in marker["entries"]:
        status = os.lstat(out / name)
        assert [record[:2] for record in marker["identities"][name]] == [[status.st_dev, status.st_ino]]
    for name in marker["identities"]:  # another device (a copy of the whole export on another tmpfs, its inode
        for record in marker["identities"][name]:  # numbers and stamps kept: sixtieth round) is not the export's
            record[0] += 1
    (out / "xmempp-export.json").write_text(json.dumps(marker))
    with pytest.raises(XMemPPError, match="is not what an export put there"):
        export_masks(three_object_masks(), out, ["davis", "coco"], overwrite=True)
    (out / "xmempp-export.json").write_text(json.dumps({"written_by": "xmempp export",
                                                        "entries": ["Annotations", "coco.json"]}))
    export_masks(three_object_masks(), out, ["davis", "coco"], overwrite=True)
    assert sorted(json.loads((out / "xmempp-export.json").read_text())["identities"]) == ["Annotations", "coco.json"]
