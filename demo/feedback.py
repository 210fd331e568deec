"""Where each message goes, and how a handler declares what it updates.

One place for each message: the result of an action shows beside the control that caused it (the editor's note,
the run's progress line, the export note), as a note that fades when it is only a confirmation; the state of
the video shows in Status, which only the handlers that change that state write. Nothing covers a control or
the picture: notes sit in the page's flow.

Handlers return their outputs keyed by component name ({"viewer": ..., "editor_note": ...}); `handler` records
the names each may update, and ui.py turns names into components. A person's problem raised inside a handler
becomes a message at the output that handler names for it, every other output left as it is.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import html
import inspect
import logging
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from xmempp.errors import XMemPPError, file_system_problem, is_out_of_memory, shown, unwritable_name_problem
from xmempp.outputs import TEMPORARY_NAME
from xmempp.session import PropagationRunningError

log = logging.getLogger(__name__)

Outputs = dict[str, Any]

_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a disk or a quota full, a file size limit


MAX_NAME = 60  # characters of an object's name, typed in the editor's box or read from a resume zip's objects.csv
_JOINERS = {"\u200c", "\u200d"}  # format characters that emoji and some scripts need inside a name


def object_name_as_kept(text: str) -> str:
    """A person's object name as the app keeps and shows it: line breaks, tabs and other control characters as
    spaces, format characters gone but the joiners (U+202E, right-to-left override, reversed the rest of a note's
    line; NUL and ESC showed in the picker), runs of spaces as one, at most MAX_NAME characters."""
    kept = "".join(" " if unicodedata.category(c) == "Cc" else "" if unicodedata.category(c) == "Cf"
                   and c not in _JOINERS else c for c in text)
    return " ".join(kept.split())[:MAX_NAME]


def no_room_behind(error: BaseException) -> OSError | None:
    """The full disk (or quota, or file size limit) behind `error`: itself, or the cause of an XMemPPError the
    engine raised for it ('cannot keep the frames' keys in the temporary folder /tmp/...: no space left'), whose
    words name the server's folders. None for anything else: a bug's OSError stays a bug."""
    seen = []
    while error is not None and error not in seen and (not seen or isinstance(seen[-1], XMemPPError)):
        if isinstance(error, OSError) and error.errno in _NO_ROOM:
            return error
        seen.append(error)
        error = error.__cause__ or error.__context__
    return None


def _server_file_name(filename: str | bytes) -> str:
    """The name of a server's file for a visitor: its last part, and a temporary name as what it stands for."""
    name = Path(os.fsdecode(filename)).name
    while temporary := TEMPORARY_NAME.fullmatch(name):  # a name the visitor never gave: shown as what it stands for
        name = temporary["name"]  # (one built beside another's: the zip's staging folder)
    return shown(name)


def _is_folder(filename: str | bytes) -> bool:
    try:
        return os.path.isdir(filename)
    except (OSError, ValueError):
        return False


def message_for(error: BaseException) -> str:
    """A person's problem in their words (⚠ first); anything else is a bug: logged, and said without a traceback."""
    if isinstance(error, PropagationRunningError):  # the engine words it for a script; here there is a button
        return f"⚠ a propagation of this video is running: press Stop (or wait for it to end) before {error.doing}"
    if isinstance(error, FileNotFoundError) and not isinstance(error, XMemPPError) and error.filename:
        # Python's "[Errno 2] No such file or directory: 'x.mp4'", in the app's words
        return f"⚠ {Path(os.fsdecode(error.filename)).name} was not found"
    if unwritable_name_problem(error) is not None:  # the server's locale: its set-up, not the visitor's file
        log.warning("a name the server cannot write: %s", error)
        return f"⚠ the server cannot store a name you gave: {unwritable_name_problem(error)}; tell whoever runs this app"
    no_room = no_room_behind(error)
    if no_room is not None:
        # The server's disk, not the visitor's doing: said alike from a load, a run or an export, with no server
        # folder or staging name in it; logged with its traceback for whoever runs the server.
        log.warning("no room to write in a handler: %s", error, exc_info=error)
        return (f"⚠ the server has no room to write your results ({file_system_problem(no_room)}); nothing you made "
                "is lost: try again in a while")
    if is_out_of_memory(error) and not isinstance(error, XMemPPError):
        # Python's bare MemoryError has no words ("⚠ ; choose..." was shown), numpy's and a loader's are no one's
        log.warning("out of memory in a handler: %s", error, exc_info=error)
        return ("⚠ the server ran out of memory; nothing you made is lost: choose a smaller processing size (or "
                "start the app with a smaller --max-side), or try again in a while")
    if isinstance(error, XMemPPError | FileNotFoundError):
        text = str(error)
        if is_out_of_memory(error):
            text += "; choose a smaller processing size (or start the app with a smaller --max-side)"
        text = without_server_paths(text)  # shown as written: it may start with a name, whose spelling is the person's
        return "⚠ " + (text or type(error).__name__)
    if file_system_problem(error) is not None:
        # The server's disk or its set-up (an unwritable work root, an unreadable example), not a bug and not the
        # visitor's doing: said in words, logged with its traceback for whoever runs the server.
        log.warning("a file system problem in a handler: %s", error, exc_info=error)
        # a folder of the server's is not named ("its file out" was shown): its files are the server's business
        named = error.filename and not _is_folder(error.filename) and Path(os.fsdecode(error.filename)).suffix
        name = f" {_server_file_name(error.filename)}" if named else "s"  # a folder, made or not, is not named
        return (f"⚠ the server cannot use its file{name} ({file_system_problem(error)}); nothing you made is lost: "
                "tell whoever runs this app")
    log.exception("unexpected error in a handler", exc_info=error)
    return f"⚠ Something went wrong ({type(error).__name__}); your session is unchanged. Details are in the server log."


def remove_partial_upload(error: BaseException) -> None:
    """Remove the files a failed upload wrote into Gradio's uploads folder. Gradio's parser writes each file of an
    upload to a temporary file it keeps (delete=False) and removes them only for its own refusals (a file over
    the size limit): a full disk, or a client gone mid-body, left them until the server stopped, and a refused
    upload kept the disk full. The parser that wrote them is a local of the frames `error` went through."""
    from gradio.route_utils import GradioMultiPartParser

    trace = error.__traceback__
    while trace is not None:
        for value in list(trace.tb_frame.f_locals.values()):
            if isinstance(value, GradioMultiPartParser):
                for file in getattr(value, "_files_to_close_on_error", ()):
                    with contextlib.suppress(OSError):  # flushing onto a full disk fails; the file closes anyway
                        file.close()
                    Path(file.name).unlink(missing_ok=True)
        trace = trace.tb_next


def upload_cut_off_response(request: Any, error: Exception) -> Any:
    """What Gradio's upload route answers when its client went away mid-body (a closed tab, a killed script): the
    partial file goes, and the log says it in one line; it said "ERROR: Exception in ASGI application" with a
    traceback. No one reads the answer."""
    from starlette.responses import PlainTextResponse

    if not request.url.path.endswith("/upload"):  # another route's: what it was before
        raise error
    remove_partial_upload(error)
    log.info("an upload ended before its last byte (its client went away); its partial file is removed")
    return PlainTextResponse("the upload ended before its last byte", status_code=400)


def upload_problem_response(request: Any, error: OSError) -> Any:
    """What Gradio's upload route answers for the server's disk (full, read-only, not its to write): it answered
    500 "Internal Server Error" with a traceback in the log, which the page showed as a toast and a script as a bare
    HTTPStatusError. The page shows "HTTP 507: <these words>". Anything else stays a bug, as before. What the
    upload wrote goes: the words promise the room back."""
    from starlette.responses import PlainTextResponse

    if not request.url.path.endswith("/upload"):  # another route's OSError: what it was before
        raise error
    remove_partial_upload(error)
    said = upload_problem_words(error)
    if said is None:
        raise error
    status, words = said
    if status == 507:
        log.warning("no room for an upload: %s", error)
    elif isinstance(error, FileExistsError | NotADirectoryError):
        log.warning("an upload refused: Gradio's upload folder is no folder now: %s", error)
    else:
        log.warning("a file system problem in an upload: %s", error)
    return PlainTextResponse(words, status_code=status)


def upload_problem_words(error: OSError) -> tuple[int, str] | None:
    """(HTTP status, words) for an upload the server's disk cannot store: 507 for no room, 500 for a disk the
    server may not write or an upload folder that is no folder now. None for anything else: a bug stays a bug."""
    no_room = no_room_behind(error)
    if no_room is not None:
        return 507, (f"the server has no room to store your upload ({file_system_problem(no_room)}); nothing you "
                     "made is lost: try again in a while")
    if isinstance(error, FileExistsError | NotADirectoryError):  # its upload folder (or a folder above) a file now
        return 500, ("the server cannot store your upload (its folder for uploads is not a folder now); nothing you "
                     "made is lost: tell whoever runs this app")
    if file_system_problem(error) is None:
        return None
    return 500, (f"the server cannot store your upload ({file_system_problem(error)}); nothing you made is lost: "
                 "tell whoever runs this app")


def without_server_paths(text: str) -> str:
    """`text` with every path under the server's temporary folder (the app's work root, Gradio's upload cache)
    shown by its file name: an uploaded file keeps the name it was uploaded with, and nothing of the server's
    layout reaches a visitor or a script (a corrupt mask was named /tmp/xmempp-app-<pid>-*/api/call-*/...)."""
    roots = {tempfile.gettempdir(), str(Path(tempfile.gettempdir()).resolve())}
    for root in sorted(roots, key=len, reverse=True):  # the folder itself too (TMPDIR=/srv/scratch/full)
        text = re.sub(re.escape(root) + r"(?![^/\s'\":;,()])[^\s'\":;,()]*", lambda found: Path(found.group(0)).name,
                      text)
    return text


def sentence_case(text: str) -> str:
    """One of the app's own sentences with a capital first letter. Never for a message that may start with a name:
    no rule tells a name from a word ("nosuffix is not a video", "app is not a video" became "Nosuffix", "App"),
    so a person's problem is shown as the engine wrote it, in the lower case the CLI prints after "error: "."""
    return text[:1].upper() + text[1:]


def note(text: str, transient: bool = False) -> str:
    """A message beside the control that was used; a `transient` confirmation fades after a few seconds.
    The text is escaped: names and file names are the person's text, never markup."""
    if not text:
        return ""
    kind = "warn" if text.startswith("⚠") else "ok"
    fade = " transient" if transient and kind == "ok" else ""
    return f'<div class="note {kind}{fade}">{html.escape(text)}</div>'


def progress_html(done: int = 0, total: int = 0, text: str = "") -> str:
    """The run's line beside Propagate: a bar only while there is something to measure, then its outcome."""
    bar = f'<progress max="{max(total, 1)}" value="{done}"></progress>' if total else ""
    kind = " warn" if text.startswith("⚠") else ""
    return f'<div class="run-progress{kind}">{bar}<span>{html.escape(text)}</span></div>'


def duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "?"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def shown_at(output: str, message: str) -> Any:
    """`message` as the output named `output` shows it: HTML notes, the progress line, or plain text."""
    if output.endswith("_note"):
        return note(message)
    if output == "progress":
        return progress_html(0, 0, message)
    return message


def no_room_for_pictures(update: Outputs) -> OSError | None:
    """Why Gradio cannot write what `update` returns into its upload cache, as the OSError it would meet, or None.
    Gradio writes each picture a handler returns, and copies each file (an export's zip, a run's video), once the
    handler has returned: a full disk (of bytes or of inodes) or a read-only one failed outside every handler, as
    Gradio's bare "Error" or no word at all. So the room is checked first, each picture counted at its raw size
    (its PNG is smaller), and the problem said as any other."""
    needed = sum(_bytes_written_for(value) for value in update.values()) if isinstance(update, dict) else 0
    return disk_problem(needed) if needed else None


def disk_problem(needed: int) -> OSError | None:
    """Why Gradio's upload cache cannot take `needed` bytes in new files, as the OSError a write would meet (a full
    disk, of bytes or of inodes, or a read-only one), or None."""
    folder = os.environ.get("GRADIO_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "gradio")
    nearest = next((path for path in (folder, *map(str, Path(folder).parents)) if os.path.lexists(path)), None)
    if nearest is not None and not os.path.isdir(nearest):  # a file put in place of the upload cache, or above it
        return OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), nearest)
    try:
        disk = os.statvfs(folder if os.path.isdir(folder) else tempfile.gettempdir())
    except (OSError, AttributeError):  # cannot be told (or no statvfs, Windows): Gradio's own write says what it finds
        return None
    if disk.f_flag & os.ST_RDONLY:
        return OSError(errno.EROFS, os.strerror(errno.EROFS))
    no_inodes = disk.f_files and disk.f_favail < 16  # a folder and a file for each output, with some to spare
    if no_inodes or disk.f_bavail * disk.f_frsize < needed + _PICTURE_ROOM_MARGIN:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return None


_PICTURE_ROOM_MARGIN = 1 << 20  # a PNG's header and chunks, and Gradio's folder for it


def _bytes_written_for(value: Any) -> int:
    """The bytes Gradio writes for an output's value: its pictures (arrays and Pillow images) and its files (a path
    to one), in dicts (the editor's value, an update), lists and tuples (a gallery's items)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, Image.Image):
        return value.width * value.height * len(value.getbands())
    if isinstance(value, Path | str) and len(str(value)) < 4096 and not str(value).lstrip().startswith("<"):
        try:
            return os.path.getsize(value) if os.path.isfile(value) else 0
        except (OSError, ValueError):  # a text that is no path (a NUL in it)
            return 0
    if isinstance(value, dict):
        return sum(_bytes_written_for(item) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_bytes_written_for(item) for item in value)
    return 0


_ENDED = object()  # what next() gives for a stream that has ended


def handler(*outputs: str, errors_to: str) -> Callable:
    """Declare the outputs (by component name) a handler may update and where a person's problem is said.

    On an error every output stays as it is and the message shows at `errors_to` (which must be one of them).
    Generator handlers stream; an error ends the stream with the message.
    """
    if errors_to not in outputs:
        raise ValueError(f"errors_to {errors_to!r} is not one of the outputs {outputs}")

    def decorate(function: Callable) -> Callable:
        if inspect.isgeneratorfunction(function):
            @functools.wraps(function)
            def streamed(*args: Any, **kwargs: Any) -> Iterator[Outputs]:
                updates = function(*args, **kwargs)
                try:
                    update = next(updates, _ENDED)
                    while update is not _ENDED:
                        no_room = no_room_for_pictures(update)
                        if no_room is None:
                            yield update
                            update = next(updates, _ENDED)
                        else:  # the handler meets the full disk where it stands, and ends its run its own way
                            update = updates.throw(no_room)
                except Exception as error:
                    yield {errors_to: shown_at(errors_to, message_for(error))}
                finally:
                    updates.close()  # a run stops at once: at a full disk, or when Gradio closes this stream

            wrapper = streamed
        else:
            @functools.wraps(function)
            def once(*args: Any, **kwargs: Any) -> Outputs:
                try:
                    update = function(*args, **kwargs)
                    no_room = no_room_for_pictures(update)
                    if no_room is not None:
                        raise no_room
                    return update
                except Exception as error:
                    return {errors_to: shown_at(errors_to, message_for(error))}

            wrapper = once
        wrapper.outputs = tuple(outputs)
        return wrapper

    return decorate
