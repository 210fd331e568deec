"""The app's endpoints as MCP tools (`--mcp`): where Gradio's MCP server keeps what an agent sends, what the agent
reads when the server cannot take it, and what happens to its run when it goes away.

Gradio's MCP server saves each data: URI of a tool call as a file in a folder of its own, then sends that file to
the app's upload route over HTTP and runs the endpoint as a script would, through a client of its own. On that
path, the app's part:
- the folder: Gradio reads it once, when gradio is imported, from GRADIO_TEMP_DIR, before the app points that at
  its work root, so an agent's files stayed in TMPDIR/gradio for good. They go to the work root's upload folder
  (named by SHA-256, as Gradio's uploads are), and with it at exit or at the next start after a kill;
- the words: the upload route answers a full or read-only disk in words (`feedback.upload_problem_words`), but the
  agent got httpx's status line ("Server error '507 Insufficient Storage' for url ..."); it gets the route's words.
  A file the MCP server could not save is said the same way, without the server's paths, and what it wrote of it
  goes: Gradio takes a file already at its name for the whole one, so every retry met the cut-off copy. A data:
  URI that is no base64 is named by its parameter, as the annotations' are;
- the run: an agent that goes away cancels its tool call; the call's job is cancelled then, so the run stops after
  the frame being computed (the MCP server's own client never went away, and the run held the model to its end).
Gradio has no hook for these, so three steps of its MCP server class are wrapped, once per process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import math
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from demo.api import lower_case_scheme
from demo.feedback import upload_problem_words
from demo.media import size_over_limit

MAX_WORDS = 500  # characters of the upload route's answer passed on: its own sentences are shorter
MCP_BODY_ROOM = 1 << 20  # bytes of a tool call's body besides its largest file


class ToolCallRefused(Exception):
    """What the agent reads as the tool's error: the problem in one line."""


def serve_mcp_tools(upload_folder: Path, max_upload_bytes: int) -> None:
    """Keep the MCP server's files in `upload_folder`, take a call's body as large as a file of `max_upload_bytes`
    sent as a data: URI, give its agents the app's words for what it cannot take, and stop the run of an agent that
    goes away."""
    import gradio.mcp as gradio_mcp
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    gradio_mcp.DEFAULT_TEMP_DIR = str(upload_folder)  # read by its file saving at each call
    server = gradio_mcp.GradioMCPServer
    # The MCP SDK's 4 MiB for a request's body refused a 3 MB video (HTTP 413) on a server that takes 200 MB:
    # base64 makes 4 characters of 3 bytes; the annotations and the call's other values get a MiB more.
    server.StreamableHTTPSessionManager = functools.partial(
        StreamableHTTPSessionManager, max_request_body_size=math.ceil(max_upload_bytes * 4 / 3) + MCP_BODY_ROOM)
    if getattr(server, "_xmempp_wrapped", False):
        return
    server._prepare_tool_call_args = _saving_in_words(server._prepare_tool_call_args, max_upload_bytes)
    server._execute_tool_without_progress = _executing_in_words(_result_when_done)
    server._execute_tool_with_progress = _executing_in_words(server._execute_tool_with_progress)
    server._xmempp_wrapped = True


def _saving_in_words(prepare: Callable[..., Any], max_upload_bytes: int) -> Callable[..., Any]:
    """`prepare` (which saves the call's data: URIs), a file past the upload limit refused before it is saved, its
    refusals in words and its partial files removed."""

    @functools.wraps(prepare)
    def prepare_in_words(self, name: str, arguments: dict[str, Any]):
        import gradio.mcp as gradio_mcp

        arguments = {name: _typed_as_gradio_names_it(_in_plain_base64(_lower_case_schemes(value)))
                     for name, value in arguments.items()}
        _refuse_past_the_upload_limit(arguments, max_upload_bytes)
        _refuse_what_is_no_base64(arguments)
        with _removed_on_failure(_saved_files(arguments, Path(gradio_mcp.DEFAULT_TEMP_DIR))):
            try:
                return prepare(self, name, arguments)
            except binascii.Error:
                raise ToolCallRefused(f"{_undecodable(arguments)}: the data: URI is not valid base64") from None
            except OSError as error:
                said = upload_problem_words(error)
                if said is None:
                    raise
                raise ToolCallRefused(said[1]) from None

    return prepare_in_words


# Gradio names a data: URI's file by Python's mimetypes: `file.mpv` for video/x-matroska, `file` for Windows' zip
# type, which the app then refused as no video (forty-ninth hostile round). Each is given a type Gradio names with
# a suffix the app reads (a WebM is a Matroska file; ffmpeg reads the content, whatever the name).
GRADIO_NAMEABLE_TYPES = {"application/x-zip-compressed": "application/zip", "video/avi": "video/x-msvideo",
                         "video/msvideo": "video/x-msvideo", "video/x-matroska": "video/webm"}


def _lower_case_schemes(value: Any) -> Any:
    """`value` (an argument, or a list of them: the annotations) with each data: URI's scheme in lower case, as
    Gradio and the endpoints look for it (`DATA:` is the same scheme)."""
    if isinstance(value, list):
        return [lower_case_scheme(item) for item in value]
    return lower_case_scheme(value)


def _typed_as_gradio_names_it(value: Any) -> Any:
    """`value`, a data: URI's type replaced by the one Gradio names its file after (GRADIO_NAMEABLE_TYPES)."""
    if not isinstance(value, str) or not value.startswith("data:"):
        return value
    header, comma, payload = value.partition(",")
    mime, semicolon, rest = header[len("data:"):].partition(";")
    named = GRADIO_NAMEABLE_TYPES.get(mime.strip().lower())
    return value if named is None else f"data:{named}{semicolon}{rest}{comma}{payload}"


def _in_plain_base64(value: Any) -> Any:
    """`value`, a data: URI's body written as plain base64 when it was percent-encoded, wrapped in lines or left
    without its padding, as the HTTP API takes it: Gradio decodes what it is given, and a percent-encoded video was
    "damaged" over MCP though the HTTP API took it (fifty-third hostile round)."""
    if not isinstance(value, str) or not value.startswith("data:"):
        return value
    header, comma, payload = value.partition(",")
    if not header.lower().endswith(";base64"):
        return value
    payload = "".join(unquote(payload).split()).rstrip("=")
    return f"{header}{comma}{payload}{'=' * (-len(payload) % 4)}"


def _refuse_what_is_no_base64(arguments: dict[str, Any]) -> None:
    """A data: URI whose body is no base64 is refused in words: Gradio's decoder drops what it cannot read, and
    `@@@@` was "the file is empty"."""
    for name, value in arguments.items():
        if isinstance(value, str) and value.startswith("data:"):
            try:
                base64.b64decode(value.partition(",")[2], validate=True)
            except ValueError:  # binascii.Error, or a character past ASCII
                raise ToolCallRefused(f"{name}: the data: URI is not valid base64") from None


def _refuse_past_the_upload_limit(arguments: dict[str, Any], max_upload_bytes: int) -> None:
    """A data: URI whose file is larger than uploads may be is refused from its length, before Gradio saves it: the
    upload refused it afterwards in Gradio's words, naming the server's folder, and the file stayed there."""
    for name, value in arguments.items():
        if isinstance(value, str) and value.startswith("data:"):
            payload = "".join(value.partition(",")[2].split())
            size = len(payload) // 4 * 3 - (len(payload) - len(payload.rstrip("=")))  # 3 bytes in 4, less padding
            if size > max_upload_bytes:
                shown_size, shown_limit = size_over_limit(size, max_upload_bytes)
                raise ToolCallRefused(f"{name}: the data: URI holds about {shown_size}; uploads are limited to "
                                      f"{shown_limit}")


def _saved_files(arguments: dict[str, Any], folder: Path) -> list[Path]:
    """The folders Gradio will save this call's data: URIs in that are not there yet (its own names for them)."""
    from gradio.processing_utils import hash_base64

    uris = [value for value in arguments.values() if isinstance(value, str) and value.startswith("data:")]
    return [path for path in (folder / hash_base64(uri) for uri in uris) if not os.path.lexists(path)]


@contextlib.contextmanager
def _removed_on_failure(made: list[Path]) -> Iterator[None]:
    """What is found in `made` (folders not there before) goes when the block fails: a file cut off by a full disk,
    an empty folder left by a URI that would not decode."""
    try:
        yield
    except BaseException:
        for folder in made:
            with contextlib.suppress(OSError):
                for entry in os.scandir(folder):
                    if entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)
                os.rmdir(folder)
        raise


def _undecodable(arguments: dict[str, Any]) -> str:
    """The name of the first parameter whose data: URI Gradio cannot decode."""
    from gradio_client.utils import decode_base64_to_binary

    for name, value in arguments.items():
        if isinstance(value, str) and value.startswith("data:"):
            try:
                decode_base64_to_binary(value)
            except binascii.Error:
                return name
    return "a file"


async def _result_when_done(self, job) -> list[Any]:
    """Gradio's wait for a job's result (its `_execute_tool_without_progress`), in a thread that the agent's going
    away does not wait for: anyio's default held the cancellation, and so the job, until the run had ended."""
    import anyio

    return [await anyio.to_thread.run_sync(job.result, abandon_on_cancel=True)]


def _executing_in_words(execute: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`execute` (which uploads the saved files, then waits for the endpoint), an upload the route refused said in
    the route's words rather than as httpx's status line, and the job cancelled when the agent goes away."""

    @functools.wraps(execute)
    async def execute_in_words(self, job, *args, **kwargs):
        try:
            return await execute(self, job, *args, **kwargs)
        except asyncio.CancelledError:  # the agent went away or cancelled: its run stops after this frame
            job.cancel()
            raise
        except httpx.HTTPStatusError as error:
            words = " ".join(error.response.text.split())[:MAX_WORDS]
            if not error.request.url.path.endswith("/upload") or not words:
                raise
            raise ToolCallRefused(words) from None

    return execute_in_words
