"""Resuming from an exported zip: the record of the video a session was on, and the check that refuses masks
meant for another video or another size rather than stretching them over these frames."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
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


def parse_record(text: str, source: Path) -> SessionRecord:
    """session.json -> SessionRecord; a damaged one is named rather than ignored."""
    try:
        data = json.loads(text)
        record = SessionRecord(frames=int(data["frames"]), width=int(data["width"]), height=int(data["height"]),
                               fingerprint=str(data["fingerprint"]), size=int(data["size"]),
                               version=int(data.get("version", RECORD_VERSION)))
    # JSON allows Infinity and 1e400 (int() overflows) and arrays nested past Python's recursion limit.
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as error:
        raise XMemPPError(f"{RECORD_NAME} in {shown(source.name)} is damaged ({type(error).__name__}: {error}); "
                          "nothing was loaded") from None
    if record.version > RECORD_VERSION:
        raise XMemPPError(f"{shown(source.name)} was exported by a newer version of the app (record version "
                          f"{record.version}); nothing was loaded")
    return record


def check_resume(loaded: LoadedVideo, frames: FrameFolder) -> None:
    """Refuse the upload when its zip was exported from another video or at another frame size: its masks would
    be stretched over frames they were never drawn on. Zips without a record are checked by their masks' size."""
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
        return
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
