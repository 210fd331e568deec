"""The app's MCP glue (demo/mcp.py) without a server: what is refused before Gradio's MCP server saves a file."""

from __future__ import annotations

import base64

import pytest

pytest.importorskip("mcp")


def test_a_data_uri_past_the_upload_limit_is_refused_before_gradio_saves_it():
    """A video past --max-upload-mb was saved, then refused in Gradio's words naming the server's folder, and stayed
    on its disk (forty-seventh hostile round)."""
    from demo.mcp import ToolCallRefused, _saving_in_words

    saved = []
    prepare = _saving_in_words(lambda server, name, arguments: saved.append(arguments), max_upload_bytes=1000)
    uri = "data:video/mp4;base64," + base64.b64encode(bytes(1500)).decode()
    with pytest.raises(ToolCallRefused, match=r"^video: the data: URI holds about 1,500 bytes; uploads are limited "
                                              r"to 1,000 bytes$"):
        prepare(None, "segment", {"video": uri, "annotations": [], "size": 64})
    assert saved == []
    within = "data:video/mp4;base64," + base64.b64encode(bytes(1000)).decode()  # the limit itself, padding and all
    prepare(None, "segment", {"video": within})
    assert saved == [{"video": within}]
