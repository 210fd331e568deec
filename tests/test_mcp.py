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


@pytest.mark.parametrize(("mime", "named"), [("application/x-zip-compressed", "file.zip"), ("video/avi", "file.avi"),
                                             ("video/x-matroska", "file.webm"), ("video/mp4", "file.mp4")])
def test_a_video_sent_under_any_of_its_types_is_saved_under_a_name_the_app_reads(tmp_path, mime, named):
    """Gradio names a data: URI's file by Python's mimetypes: an MKV became `file.mpv` and a Windows zip `file`,
    both refused as "not a video or a .zip of frames" (forty-ninth hostile round)."""
    from gradio.processing_utils import save_base64_to_cache

    from demo.mcp import _saving_in_words

    sent = []
    prepare = _saving_in_words(lambda server, name, arguments: sent.append(arguments), max_upload_bytes=1000)
    prepare(None, "segment", {"video": f"data:{mime};BASE64," + base64.b64encode(b"frames").decode(), "size": 64})
    (arguments,) = sent
    assert arguments["size"] == 64
    assert save_base64_to_cache(arguments["video"], str(tmp_path)).endswith("/" + named)


def test_a_data_uri_whose_scheme_has_capitals_is_taken_as_gradio_takes_one_in_lower_case():
    """`DATA:video/mp4;base64,...` was neither saved by Gradio's MCP server nor read by the tool (fifty-second
    hostile round, F6): a URL's scheme means the same in any letter case."""
    from demo.mcp import _saving_in_words

    sent = []
    prepare = _saving_in_words(lambda server, name, arguments: sent.append(arguments), max_upload_bytes=1000)
    payload = base64.b64encode(b"frames").decode()
    prepare(None, "segment", {"video": "DATA:video/mp4;base64," + payload, "annotations": ["Data:image/png;base64,AA"]})
    assert sent == [{"video": "data:video/mp4;base64," + payload, "annotations": ["data:image/png;base64,AA"]}]
