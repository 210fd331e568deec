"""The app's endpoints as MCP tools (`--mcp`): where Gradio's MCP server keeps what an agent sends, and what the
agent reads when the server cannot take it.

Gradio's MCP server saves each data: URI of a tool call as a file in a folder of its own, then sends that file to
the app's upload route over HTTP, as a script would. Two things on that path are the app's:
- the folder: Gradio reads it once, when gradio is imported, from GRADIO_TEMP_DIR, before the app points that at
  its work root, so an agent's files stayed in TMPDIR/gradio for good. They go to the work root's upload folder
  (named by SHA-256, as Gradio's uploads are), and with it at exit or at the next start after a kill;
- the words: the upload route answers a full or read-only disk in words (`feedback.upload_problem_words`), but the
  agent got httpx's status line ("Server error '507 Insufficient Storage' for url ..."); it gets the route's words,
  and a file the MCP server could not save itself is said the same way, without the server's paths.
Gradio has no hook for either, so two steps of its MCP server class are wrapped, once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from demo.feedback import upload_problem_words

MAX_WORDS = 500  # characters of the upload route's answer passed on: its own sentences are shorter


class ToolCallRefused(Exception):
    """What the agent reads as the tool's error: the server's problem in one line."""


def serve_mcp_tools(upload_folder: Path) -> None:
    """Keep the MCP server's files in `upload_folder` and give its agents the app's words for a disk that cannot
    take them."""
    import gradio.mcp as gradio_mcp

    gradio_mcp.DEFAULT_TEMP_DIR = str(upload_folder)  # read by its file saving at each call
    server = gradio_mcp.GradioMCPServer
    if getattr(server, "_refusals_in_words", False):
        return
    server._prepare_tool_call_args = _saving_in_words(server._prepare_tool_call_args)
    server._execute_tool_without_progress = _uploading_in_words(server._execute_tool_without_progress)
    server._execute_tool_with_progress = _uploading_in_words(server._execute_tool_with_progress)
    server._refusals_in_words = True


def _saving_in_words(prepare: Callable[..., Any]) -> Callable[..., Any]:
    """`prepare` (which saves the call's data: URIs), a disk's refusal said as the upload route says it."""

    @functools.wraps(prepare)
    def prepare_in_words(self, *args, **kwargs):
        try:
            return prepare(self, *args, **kwargs)
        except OSError as error:
            said = upload_problem_words(error)
            if said is None:
                raise
            raise ToolCallRefused(said[1]) from None

    return prepare_in_words


def _uploading_in_words(execute: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`execute` (which uploads the saved files, then waits for the endpoint), an upload the route refused said in
    the route's words rather than as httpx's status line."""

    @functools.wraps(execute)
    async def execute_in_words(self, *args, **kwargs):
        try:
            return await execute(self, *args, **kwargs)
        except httpx.HTTPStatusError as error:
            words = " ".join(error.response.text.split())[:MAX_WORDS]
            if not error.request.url.path.endswith("/upload") or not words:
                raise
            raise ToolCallRefused(words) from None

    return execute_in_words
