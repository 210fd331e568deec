"""Resuming from an exported zip: the record of the video a session was on, and the check that refuses masks
meant for another video or another size rather than stretching them over these frames."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from xmempp.errors import XMemPPError, shown
from xmempp.masks.ids import MAX_OBJECTS, OBJECT_LIMIT, too_many_objects
from xmempp.video import FrameFolder

if TYPE_CHECKING:
    from demo.media import LoadedVideo

RECORD_NAME = "session.json"
SOURCE_FOLDER = "source"  # the uploaded video, as the export zip carries it
FRAMES_FOLDER = "JPEGImages"  # the frames, when the session came from a zip of images (DAVIS layout's name)
FINGERPRINT_FRAMES = 8  # frames hashed for the fingerprint, evenly spaced: enough to tell videos apart, fast
RECORD_VERSION = 1
MAX_RECORD_NUMBER = 10**9  # far above any frame count, side or size; a message never shows thousands of digits
KNOWN_RECORD_VERSIONS = (1,)  # every record version the app has written: each still resumes


@dataclass(frozen=True)
class SessionRecord:
    """What an export says about its session: the video's frames and the processing size."""

    frames: int
    width: int
    height: int
    fingerprint: str  # sha256 of a few frames' pixels, see fingerprint()
    size: int  # processing size (short side)
    version: int = RECORD_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


RECORD_FIELDS = tuple(field.name for field in fields(SessionRecord))


def fingerprint(frames: FrameFolder) -> str:
    """A digest of the pixels of up to FINGERPRINT_FRAMES evenly spaced frames and of the frame count."""
    digest = hashlib.sha256(f"{len(frames)}".encode())
    for index in sorted({round(i) for i in np.linspace(0, len(frames) - 1, min(FINGERPRINT_FRAMES, len(frames)))}):
        pixels = np.ascontiguousarray(frames.read(index))
        digest.update(f"{pixels.shape}".encode())
        digest.update(pixels.tobytes())
    return digest.hexdigest()


def record_of(frames: FrameFolder, size: int) -> SessionRecord:
    height, width = frames.read(0).shape[:2]
    return SessionRecord(frames=len(frames), width=width, height=height, fingerprint=fingerprint(frames), size=size)


class _RepeatedKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _each_key_once(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object's fields, refused when one is given twice (json keeps the last without a word)."""
    data = {}
    for key, value in pairs:
        if key in data:
            raise _RepeatedKey(key[:40])
        data[key] = value
    return data


def parse_record(text: str, source: Path) -> SessionRecord:
    """session.json -> SessionRecord, read strictly: a whole number (not a fraction, a text or true) where one is
    meant and a record version this app knows; anything else is named as damaged, in words, rather than guessed
    at (size 2.9 was read as 2, "96" and true as sizes, version -1 accepted)."""
    try:
        data = json.loads(text, object_pairs_hook=_each_key_once)
    except _RepeatedKey as repeated:  # which of the two values was meant cannot be guessed
        raise _damaged(source, f"its field {repeated.key!r} is given twice") from None
    except json.JSONDecodeError as error:
        raise _damaged(source, f"it is not JSON (line {error.lineno} column {error.colno})") from None
    except RecursionError:  # arrays nested past Python's recursion limit
        raise _damaged(source, "it nests too deep") from None
    except ValueError:  # an integer past Python's limit of digits (4300) for reading one
        raise _damaged(source, "it holds a number of too many digits") from None
    if not isinstance(data, dict):
        raise _damaged(source, "it is not a JSON object")
    version = data.get("version")
    if _is_whole(version) and version > RECORD_VERSION:  # before its fields: a newer record may have others
        raise XMemPPError(f"{shown(source.name)} was exported by a newer version of the app (record version "
                          f"{version}); nothing was loaded")
    missing = [name for name in RECORD_FIELDS if name not in data]
    if missing:
        raise _damaged(source, f"its field {missing[0]!r} is missing")
    for name in ("frames", "width", "height", "size"):
        if not _is_whole(data[name]) or not 1 <= data[name] <= MAX_RECORD_NUMBER:
            raise _damaged(source, f"its field {name!r} is not a whole number from 1 to {MAX_RECORD_NUMBER:,}")
    if not isinstance(data["fingerprint"], str):
        raise _damaged(source, "its field 'fingerprint' is not text")
    if not _is_whole(version) or version not in KNOWN_RECORD_VERSIONS:
        raise _damaged(source, f"its field 'version' is not a record version this app knows "
                               f"({', '.join(map(str, KNOWN_RECORD_VERSIONS))})")
    return SessionRecord(**{name: data[name] for name in RECORD_FIELDS})


def _is_whole(value: object) -> bool:
    return type(value) is int  # not bool (an int to Python), not 2.0 or "2"


def _damaged(source: Path, what: str) -> XMemPPError:
    return XMemPPError(f"{RECORD_NAME} in {shown(source.name)} is damaged: {what}; nothing was loaded")


def check_resume(loaded: LoadedVideo, frames: FrameFolder) -> None:
    """Refuse the upload when its zip was exported from another video or at another frame size: its masks would
    be stretched over frames they were never drawn on. Every mask is checked against the frames' size too, record
    or not: a record that matches says nothing of masks replaced in the zip since."""
    height, width = frames.read(0).shape[:2]
    record, zip_name = loaded.record, loaded.record_source.name if loaded.record_source else "the zip"
    if record is not None:
        if (record.width, record.height) != (width, height):
            raise XMemPPError(f"{shown(zip_name)} was exported from frames of {record.width}x{record.height}, but "
                              f"these frames are {width}x{height} (another video, or another size limit on this "
                              "server); nothing was loaded")
        if record.frames != len(frames):
            raise XMemPPError(f"{shown(zip_name)} was exported from a video of {record.frames} frames, but this one "
                              f"has {len(frames)}; nothing was loaded")
        if record.fingerprint != fingerprint(frames):
            raise XMemPPError(f"{shown(zip_name)} was exported from another video: its frames differ from these; "
                              "nothing was loaded")
    for path in [*loaded.user_masks.values(), *loaded.result_masks.values()]:
        with Image.open(path) as image:
            if image.size != (width, height):
                name = loaded.mask_names.get(path, path.name)
                raise XMemPPError(f"mask {shown(name)} is {image.width}x{image.height}, but the frames are "
                                  f"{width}x{height}: the zip is from another video or another size; nothing "
                                  "was loaded")


def check_object_ids(loaded: LoadedVideo, masks: list[np.ndarray]) -> None:
    """Refuse a zip past the object limit (200 objects in its masks, or named in its objects.csv), with the
    engine's sentence, before any of them costs the model a thing; and ids past it, which the app's picker
    (objects 1..MAX_OBJECTS) cannot offer."""
    present = np.unique(np.concatenate([np.unique(mask) for mask in masks])) if masks else np.array([], np.uint8)
    ids = sorted({*(int(i) for i in present if i), *loaded.object_names})
    zip_name = shown(loaded.masks_zip.name) if loaded.masks_zip else "the upload"
    if len(ids) > MAX_OBJECTS:
        raise XMemPPError(f"{too_many_objects(len(ids), zip_name)}; nothing was loaded")
    if ids and ids[-1] > MAX_OBJECTS:
        raise XMemPPError(f"{zip_name} holds object id {ids[-1]}; the app numbers objects 1 to {MAX_OBJECTS}, "
                          f"{OBJECT_LIMIT}; nothing was loaded")
