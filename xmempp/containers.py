"""How many bytes a video's container says the file holds: a file that holds fewer was cut short.

ffmpeg reads a cut-off file up to the cut as if it ended there, and where a container gives no frame count (an
AVI's length is estimated from its size) the frames missing cannot be told from the frames decoded: an AVI cut at
three quarters of its size was segmented as a video of 451 frames, exit 0 (forty-ninth hostile round). The
containers xmempp takes each state the length of their top-level parts, so a cut is told exactly, without decoding:
- MP4 and QuickTime (ISO base media): a sequence of boxes, each starting with its size;
- AVI (RIFF): one RIFF chunk, and more (AVIX) past 1 GB, each starting with its size;
- Matroska and WebM (EBML): the header, then one Segment element of a stated size (or of a size left unknown, as a
  live recording writes it: then nothing is told).
Anything else, or a structure that is not what these formats write (junk in place of a box's name), tells nothing:
ffmpeg's reading decides then, as before.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import BinaryIO

from xmempp.regular_files import open_regular

ISO_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}  # what MP4s and MOVs begin with
# The boxes found at the top of MP4s and MOVs (ISO/IEC 14496-12, QuickTime): a size is believed only from one of
# these; anything else there is junk after the last box (a camera's padding), which tells nothing.
ISO_TOP_LEVEL_BOXES = ISO_FIRST_BOXES | {b"moof", b"mfra", b"sidx", b"ssix", b"styp", b"uuid", b"meta", b"pdin",
                                         b"prft", b"emsg", b"udta"}
MAX_TOP_LEVEL_PARTS = 1_000_000  # a fragmented MP4 holds two boxes a fragment: far below this
EBML_HEADER, MATROSKA_SEGMENT = 0x1A45DFA3, 0x18538067


def declared_size(video: Path) -> int | None:
    """The bytes `video`'s container says it holds, or None where it says nothing this reads. Opened as every input
    is (`open_regular`): a FIFO put at its name meanwhile is refused, not waited on for ever."""
    with open_regular(video, f"the video {video.name}") as file:
        start = file.read(12)
        size = os.fstat(file.fileno()).st_size
        if len(start) == 12 and start[4:8] in ISO_FIRST_BOXES:
            return _iso_boxes_end(file, size)
        if start[:4] == b"RIFF" and start[8:12] == b"AVI ":
            ends = [_riff_chunks_end(file, size), _avi_index_end(file, size)]
            return max((end for end in ends if end is not None), default=None)
        if start[:4] == EBML_HEADER.to_bytes(4, "big"):
            return _matroska_end(file)
    return None


# Where an MP4's frames, and the table of them, lie: a box of another kind cut short loses no frame.
FRAME_BOXES = {b"moov", b"mdat", b"moof"}
# A fragment is a moof, then the mdat of its frames; before the next moof may come its index, type or times
# (`-movflags +dash`, `-write_prft`: a sidx or prft before each moof hid a cut moof header, fifty-fifth round).
NEXT_FRAGMENT_STARTS = (b"moof", b"sidx", b"styp", b"prft", b"emsg")


UNSEEN_BOX_BYTES = 1 << 24  # at most what a fragment's moof, sidx or prft of a kind not met yet may hold (kilobytes)


def _iso_boxes_end(file: BinaryIO, size: int) -> int | None:
    """Where the last of the top-level boxes ends, as their sizes say."""
    offset, last, largest, fragmented = 0, None, {}, False
    for _ in range(MAX_TOP_LEVEL_PARTS):
        if offset >= size or size - offset < 8:
            if last == b"moof":  # a fragment's table of frames with none of its frames: a moof's mdat follows it
                return offset + 8
            if offset >= size:
                return offset
            file.seek(offset)  # a few stray bytes after the last box (a newline, padding), or a box's header cut
            return _cut_fragment_header_end(offset, file.read(8), last, largest) if fragmented else None
        file.seek(offset)
        header = file.read(16)
        if len(header) < 8:  # the file shrank meanwhile: the run's own checks tell that
            return None
        box_size, name = struct.unpack(">I4s", header[:8])
        if name not in ISO_TOP_LEVEL_BOXES:  # junk after the last box
            return None
        if box_size == 1:  # its size is the 64-bit number after its name
            if len(header) < 16:
                return None
            box_size = struct.unpack(">Q", header[8:16])[0]
            if box_size < 16:
                return None
        elif box_size < 8:  # 0: it runs to the end of the file, whatever it holds; less: no box
            return None
        if offset + box_size > size and name not in FRAME_BOXES:
            # no frame is lost (a line of text after the last box, `    meta: ...`, reads as such a box of 539 MB:
            # fifty-fourth round), unless it is the index or times a fragment's moof comes after
            after_frames = fragmented and last in (b"moov", b"mdat") and name in NEXT_FRAGMENT_STARTS
            return offset + box_size if after_frames else None
        fragmented |= name == b"moof" or (name == b"moov" and _holds_box(file, offset, box_size, b"mvex"))
        if name in FRAME_BOXES or name == b"mfra":  # the last part of frames (what comes between tells nothing),
            last = name  # or the index of the fragments, after which none comes
        largest[name] = max(largest.get(name, 0), box_size)
        offset += box_size
    return None


def _holds_box(file: BinaryIO, start: int, size: int, wanted: bytes) -> bool:
    """Whether the box at `start`, of `size` bytes, holds a box named `wanted` at its top (a moov's mvex: the
    movie goes on in fragments, the first of which may follow its first frames in a plain mdat)."""
    offset = start + 8
    for _ in range(MAX_TOP_LEVEL_PARTS):
        if offset + 8 > start + size:
            return False
        file.seek(offset)
        header = file.read(8)
        if len(header) < 8:  # the box runs past the file's end (a cut moov after a whole video: fifty-seventh
            return False  # round), which its size tells
        child_size, name = struct.unpack(">I4s", header)
        if name == wanted:
            return True
        if child_size < 8:  # 0 (to the end), 1 (64-bit: never inside a moov), or no box
            return False
        offset += child_size
    return False


def _cut_fragment_header_end(offset: int, left: bytes, last: bytes | None, largest: dict[bytes, int]) -> int | None:
    """Where the box ends whose header the file's end cut, in a fragmented MP4 (every fragment adds frames: one cut
    4 to 7 bytes into a fragment's `moof` header was taken whole, fifty-second to fifty-sixth hostile rounds);
    None for bytes that tell nothing. An MP4 that is not fragmented has its frames in boxes read whole by then.

    The leftover bytes are a cut header only of a box the next fragment starts with (a `moof`, or the index or
    times before it, after the moov or an `mdat`), when what is left of a name starts that box's, and its size is
    one such a box of this file may have: at most four times the largest of its kind seen; before the first moof,
    when which kinds start a fragment is not known yet, UNSEEN_BOX_BYTES for a kind not met (the first moof after
    a moov, a plain mdat and a 32-byte prft was held to four times the prft's size: fifty-seventh round). Text or
    zeros after the last box (`\\n\\n\\n\\n` reads as a box of 168 MB; a fragmented MP4 often ends with its
    index, `mfra`) are stray bytes; four bytes alone that read as such a size cannot be told from a cut, and are
    taken for one."""
    if len(left) < 4 or last not in (b"moov", b"mdat"):  # a fragment comes after the movie's header or frames
        return None
    expected = [name for name in NEXT_FRAGMENT_STARTS if name.startswith(left[4:])]
    if not expected:
        return None
    seen = [4 * largest[name] for name in expected if name in largest]
    # which kinds may come is known once a moof was met, or when every kind the name may start was met
    kinds_known = seen and (b"moof" in largest or len(seen) == len(expected))
    bound = max(seen) if kinds_known else UNSEEN_BOX_BYTES
    box_size = struct.unpack(">I", left[:4])[0]
    return offset + box_size if 8 <= box_size <= bound else None


def _riff_chunks_end(file: BinaryIO, size: int) -> int | None:
    """Where the last of the top-level RIFF chunks ends (an AVI of more than 1 GB continues in AVIX chunks)."""
    offset = 0
    for _ in range(MAX_TOP_LEVEL_PARTS):
        if offset >= size:
            return offset
        chunk = _riff_chunk_at(file, offset, size)
        if chunk is None:  # a few stray bytes after the last chunk, or its header cut: untold
            return None
        name, length = chunk
        if name != b"RIFF":  # something after the last chunk: not the AVI's
            return offset
        if length == RIFF_UNKNOWN_SIZE:  # written to a stream: where its parts end tells
            return _riff_stream_end(file, offset + 12, size)
        end = offset + 8 + length
        if end >= size:  # the last: its padding byte may be left out at the file's end
            return end
        offset = end + (length & 1)  # chunks are padded to an even length
    return None


RIFF_UNKNOWN_SIZE = 0xFFFFFFFF  # what ffmpeg leaves in a chunk's size when it writes to a pipe
MAX_STREAM_CHUNKS = 10_000_000  # a day of 30 fps video with its sound: far below this


def _riff_stream_end(file: BinaryIO, offset: int, size: int) -> int | None:
    """Where the chunks of a RIFF written to a stream end, from `offset` to the file's end: each chunk in turn, and
    the children of a list of unknown size (its `movi` frames). A file ending exactly after a chunk is whole; one
    whose last chunk runs past it was cut (a writer never closed, a copy cut short)."""
    for _ in range(MAX_STREAM_CHUNKS):
        if offset >= size:
            return offset
        chunk = _riff_chunk_at(file, offset, size)
        if chunk is None:  # stray bytes after the stream tell nothing; a frame's header cut after its name is a cut
            file.seek(offset)
            return offset + 8 if AVI_STREAM_CHUNK.fullmatch(file.read(8)[:4]) else None
        name, length = chunk
        if length == RIFF_UNKNOWN_SIZE and name in (b"RIFF", b"LIST"):
            offset += 12  # its name, its size and its type; its children follow
            continue
        end = offset + 8 + length
        if end >= size:  # a part of the stream past the file's end was cut; text after the stream is no part
            return end if end == size or AVI_STREAM_CHUNK.fullmatch(name) else None
        offset = end + (length & 1)
    return None


# What a stream written to a pipe holds: frames and sound (00dc, 01wb), indexes, lists, filler.
AVI_STREAM_CHUNK = re.compile(rb"\d\d(dc|db|wb|tx|pc)|ix\d\d|idx1|indx|JUNK|LIST|RIFF")


def _riff_chunk_at(file: BinaryIO, offset: int, size: int) -> tuple[bytes, int] | None:
    """The name and size of the RIFF chunk at `offset`; None where fewer than its 8 bytes of header are left (the
    file shrank meanwhile included), or where its name is no chunk's (four letters, digits or spaces): zeros or
    other bytes after the last chunk, which tell nothing."""
    if size - offset < 8:
        return None
    file.seek(offset)
    header = file.read(8)
    if len(header) < 8 or not all(byte == 32 or 48 <= byte <= 57 or 65 <= byte <= 90 or 97 <= byte <= 122
                                  for byte in header[:4]):
        return None
    return struct.unpack("<4sI", header)


AVI_HEADER_BYTES = 1 << 20  # where an AVI's header list, and its index of indexes, lie


def _avi_index_end(file: BinaryIO, size: int) -> int | None:
    """Where the farthest of the indexes an AVI of more than 1 GB lists in its header (OpenDML's `indx`, one per
    stream) ends: a file cut exactly where one of its later parts began ends on a whole chunk, and only its header
    tells that more followed (fifty-first hostile round). None for an AVI without such an index."""
    file.seek(12)
    header = file.read(AVI_HEADER_BYTES)
    if header[:4] != b"LIST" or header[8:12] != b"hdrl":
        return None
    hdrl = header[:8 + struct.unpack_from("<I", header, 4)[0]]
    farthest, at = None, hdrl.find(b"indx")
    while at != -1 and at + 32 <= len(hdrl):
        # AVISUPERINDEX: its size, longs per entry, subtype, type, entries in use, chunk id, 3 reserved longs
        longs_per_entry, _, index_type, entries = struct.unpack_from("<HBBI", hdrl, at + 8)
        if index_type == 0 and longs_per_entry == 4:  # AVI_INDEX_OF_INDEXES: (offset, size, duration) each
            for entry in range(min(entries, (len(hdrl) - at - 32) // 16)):
                offset, length = struct.unpack_from("<QI", hdrl, at + 32 + 16 * entry)
                if offset and length:
                    farthest = max(farthest or 0, offset + length)
        at = hdrl.find(b"indx", at + 4)
    return farthest


def _matroska_end(file: BinaryIO) -> int | None:
    """Where the Segment (everything after the EBML header) ends; None where its size is left unknown."""
    file.seek(0)
    for _ in range(2):
        element = _ebml_number(file, keep_marker=True)
        length = _ebml_number(file, keep_marker=False)
        if element is None or length is None:
            return None
        value, unknown = length
        if element[0] == MATROSKA_SEGMENT:
            return None if unknown else file.tell() + value
        if element[0] != EBML_HEADER or unknown:
            return None
        file.seek(value, os.SEEK_CUR)
    return None


def _ebml_number(file: BinaryIO, keep_marker: bool) -> tuple[int, bool] | None:
    """An EBML variable-length number at the file's position (an element's id, with its marker bit, or a size,
    without), and whether it is the reserved "unknown" value; None where the bytes are no such number."""
    first = file.read(1)
    if not first or first[0] == 0:
        return None
    length = 8 - first[0].bit_length() + 1
    rest = file.read(length - 1)
    if len(rest) < length - 1:
        return None
    raw = int.from_bytes(first + rest, "big")
    value = raw if keep_marker else raw & ((1 << (7 * length)) - 1)
    return value, value == (1 << (7 * length)) - 1
