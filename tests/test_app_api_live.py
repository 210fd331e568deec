"""The app's API against a live `python app.py --mcp` (random weights: the masks mean nothing), as a script and an
MCP agent reach it: README's gradio_client example, a bad value, and the MCP tools over Streamable HTTP."""

from __future__ import annotations

import ast
import asyncio
import base64
import contextlib
import importlib.util
import io
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import start_app
from tests.helpers import SHARED, moving_square_frames, square_mask, write_palette_mask

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHAIR = SHARED / "data" / "chair"
HAS_MCP = importlib.util.find_spec("mcp") is not None


@pytest.fixture(scope="module")
def app(tmp_path_factory, checkpoint):
    """(the app's URL, its log file): `python app.py` with random weights, and `--mcp` when the extra is installed."""
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    arguments = ["--weights", str(checkpoint), "--device", "cpu", "--sam-model", "none", "--no-speed-check",
                 *(["--mcp"] if HAS_MCP else [])]
    with start_app(log_path, arguments) as url:
        yield url, log_path


def readme_example() -> str:
    """The gradio_client example of README's section on the API."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Scripts and agents"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def ids(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.mark.skipif(not CHAIR.is_dir(), reason="needs ../shared/data/chair")
def test_readmes_example_segments_chair_as_the_cli_does(app, checkpoint, tmp_path):
    url, _ = app
    example = readme_example()
    assert '"http://127.0.0.1:7860/"' in example and '"../shared/data/chair"' in example
    script = example.replace('"http://127.0.0.1:7860/"', repr(url)).replace('"../shared/data/chair"', repr(str(CHAIR)))
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    size = re.search(r"size=(\d+)", example).group(1)
    subprocess.run([sys.executable, "-m", "xmempp", "run", "--weights", str(checkpoint), "--device", "cpu",
                    "--images", str(CHAIR / "chair.mp4"), "--masks", str(CHAIR / "Annotations"), "--output",
                    str(tmp_path / "cli"), "--frames", "0,20", "--size", size, "--quiet"], check=True, timeout=900)
    expected = sorted((tmp_path / "cli" / "masks").glob("*.png"))
    assert len(expected) == 60
    for path in expected:
        assert np.array_equal(ids(tmp_path / "chair-masks" / "Annotations" / path.name), ids(path)), path.name
    assert (tmp_path / "chair-masks" / "coco.json").is_file()


def test_a_size_sent_as_text_gets_one_line_and_no_traceback_in_the_log(app):
    from gradio_client import Client

    url, log_path = app
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match=r"size: '240' is not a whole number from 16 to 480") as raised:
        client.predict(video=None, annotations=[], size="240", api_name="/segment")
    assert "\n" not in str(raised.value)
    time.sleep(0.5)
    assert "Traceback" not in log_path.read_text()


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def tiny_clip(folder: Path, comment: bytes = b"") -> tuple[str, str]:
    """(12 frames of the moving square as a zip, the first frame's mask as a PNG), as data: URIs; another `comment`
    makes another zip of the same frames."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.comment = comment
        for i, frame in enumerate(moving_square_frames(12)):
            png = io.BytesIO()
            Image.fromarray(frame).save(png, format="PNG")
            zipped.writestr(f"frame_{i:06d}.png", png.getvalue())
    mask = write_palette_mask(folder / "mask.png", square_mask(0)).read_bytes()
    return data_uri(archive.getvalue(), "application/zip"), data_uri(mask, "image/png")


@pytest.mark.skipif(not HAS_MCP, reason="needs the MCP extra: pip install 'gradio[mcp]==6.31.0'")
def test_an_mcp_client_lists_the_endpoints_as_tools_and_segments_with_one(app, tmp_path):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    url, _ = app
    video, mask = tiny_clip(tmp_path)

    async def session_calls():
        async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _), \
                ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("segment", {"video": video, "annotations": [mask], "frames": [0],
                                                         "size": 64, "formats": ["davis"], "k": 1})
            return tools, result

    tools, result = asyncio.run(asyncio.wait_for(session_calls(), timeout=600))
    assert {tool.name for tool in tools.tools} == {"segment", "suggest_frames", "server_limits"}
    segment = next(tool for tool in tools.tools if tool.name == "segment")
    assert segment.inputSchema["properties"]["size"]["type"] == "integer"
    assert not result.isError, result.content
    # Gradio's MCP server answers a queued tool with its outputs as one text, Python's repr of them.
    archive, summary = ast.literal_eval(next(item.text for item in result.content if item.type == "text"))
    zip_url = archive["url"]
    assert summary["frames"] == 12 and summary["annotated_frames"] == [0]
    with urllib.request.urlopen(zip_url, timeout=30) as response:
        names = zipfile.ZipFile(io.BytesIO(response.read())).namelist()
    assert sorted(names) == [f"Annotations/frame_{i:06d}.png" for i in range(12)]


@pytest.mark.skipif(not HAS_MCP, reason="needs the MCP extra: pip install 'gradio[mcp]==6.31.0'")
@pytest.mark.parametrize("video", ["data:video/mp4;base64,a", "data:video/mp4;base64,@@@@", "data:video/mp4,hello"],
                         ids=["one character", "no base64 character", "not base64"])
def test_an_mcp_video_that_is_no_base64_is_refused_naming_the_parameter(app, tmp_path, video):
    """Gradio's decoder's words ("Incorrect padding") reached the agent, without the parameter (forty-sixth round);
    `@@@@`, which Gradio's decoder reads as nothing, was "the file is empty" (fifty-third round)."""
    url, _ = app
    _, mask = tiny_clip(tmp_path)
    result = mcp_segment(url, video, mask)
    assert result.isError
    assert [item.text for item in result.content] == ["video: the data: URI is not valid base64"]


@pytest.mark.skipif(not HAS_MCP, reason="needs the MCP extra: pip install 'gradio[mcp]==6.31.0'")
def test_an_mcp_call_carrying_a_video_of_a_few_megabytes_reaches_the_tool(app, tmp_path):
    """The MCP SDK refuses a request's body past 4 MiB: a 3.3 MB video as a data: URI got HTTP 413, which the agent
    saw as httpx's status line, on a server that takes 200 MB uploads (forty-sixth hostile round)."""
    import os

    url, _ = app
    _, mask = tiny_clip(tmp_path)
    result = mcp_segment(url, data_uri(os.urandom(3_300_000), "video/mp4"), mask)  # no video: the tool says so
    text = " ".join(item.text for item in result.content)
    assert result.isError and text.startswith("video: ") and "413" not in text, text


def raw_call(url: str, endpoint: str, data: list) -> tuple[str, dict]:
    """Call an endpoint over Gradio's HTTP API with `data` as sent, not as gradio_client would upload it first;
    returns the last event's name and data."""
    import json

    request = urllib.request.Request(f"{url}gradio_api/call/{endpoint}", data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{endpoint}/{event_id}", timeout=120) as response:
        events = re.findall(r"^event: (\w+)\ndata: (.*)$", response.read().decode(), re.M)
    name, payload = events[-1]
    return name, json.loads(payload)


@pytest.mark.parametrize(("video", "refused"), [
    ("/etc/hostname", "/etc/hostname"),  # a file of the server it was not sent
    (str(ROOT / "app.py"), "app.py"),  # the app's own folder
    ("/no/such/clip.mp4", "/no/such/clip.mp4"),
    ("http://127.0.0.1:1/clip.mp4", "127.0.0.1"),  # Gradio fetches no local address
])
def test_a_file_the_server_refuses_to_take_gets_one_line_naming_the_parameter(app, video, refused):
    """Gradio's refusal, before the endpoint runs, reached the client as {"error": null}, a traceback in the log."""
    url, log_path = app
    file = {"path": video, "meta": {"_type": "gradio.FileData"}}
    if video.startswith("http"):
        file["url"] = video
    event, payload = raw_call(url, "segment", [file, [], None, 64, ["davis"], 1, "fp32"])
    assert event == "error"
    message = payload["error"]
    assert message and message.startswith("video: ") and refused in message and "\n" not in message
    time.sleep(0.5)
    assert "Traceback" not in log_path.read_text()


@pytest.mark.parametrize(("sent", "words"), [
    ({"url": "http://93.184.215.14:65536/x.mp4"}, "is not a valid URL (its port is no valid port number)"),
    ({"url": "http://93.184.215.14:-1/x.mp4"}, "is not a valid URL (its port is no valid port number)"),
    ({"url": "http://93.184.215.14/\ud800.mp4"}, "is not a valid URL (it holds a character that is no text)"),
    ({"path": "/tmp/\ud800.mp4"}, "is not a file uploaded to this server (its name holds a character that is no "
                                   "text)"),
    ({"url": "HTTP://127.0.0.1:1/clip.mp4"}, "this server fetches only public http(s) addresses"),
    ({"url": "http://[bad/x.zip"}, "is not a valid URL (it cannot be read as a URL)"),
    ({"url": "http://xn--zz.com/x.mp4"}, "is not a valid URL (its host name is not valid"),
], ids=["port past 65535", "port below 0", "surrogate in a URL", "surrogate in a path", "scheme in capitals",
        "bracket left open", "bad punycode"])
def test_a_file_objects_url_or_path_that_no_system_call_takes_is_named_in_words(app, sent, words):
    """A port out of range failed deep in the connection ({"error": null}, a traceback in the log); a lone
    surrogate reached the caller as the codec's words; `HTTP://` was "not a file uploaded to this server"
    (fifty-third hostile round)."""
    url, log_path = app
    event, payload = raw_call(url, "segment", [{**sent, "meta": {"_type": "gradio.FileData"}}, [], None, 64])
    assert event == "error" and payload["error"].startswith("video: ") and words in payload["error"], payload
    assert "codec" not in payload["error"] and "\n" not in payload["error"]
    time.sleep(0.5)
    assert "Traceback" not in log_path.read_text()


def test_a_value_that_is_no_number_is_described_never_echoed(app, tmp_path):
    """A file object sent as `size` was echoed whole, the server's upload path in it; a data: URI in `frames` made
    a 24 KB message (fifty-third hostile round)."""
    import json

    url, _ = app
    video, mask = tiny_clip(tmp_path)
    body, boundary = _multipart_png(base64.b64decode(mask.split(",", 1)[1]))
    request = urllib.request.Request(f"{url}gradio_api/upload", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        uploaded = json.load(response)[0]
    event, payload = raw_call(url, "segment", [video, [mask], [0], {"path": uploaded,
                                                                    "meta": {"_type": "gradio.FileData"}}])
    assert event == "error" and payload["error"].startswith("size: a file is not a whole number"), payload
    assert "uploads" not in payload["error"]
    event, payload = raw_call(url, "segment", [video, [mask], [mask], 64])
    assert event == "error", payload
    assert payload["error"] == f"frames: [a text of {len(mask)} characters] is not a list of frame numbers", payload


def _multipart_png(png: bytes) -> tuple[bytes, str]:
    """A form with one file, `m.png`, as Gradio's upload route takes it; and its boundary."""
    boundary = "xmempp-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"m.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    return body, boundary


def test_a_plain_http_call_without_the_optional_parameters_gets_their_defaults(app, tmp_path):
    """A call over plain HTTP that left out the parameters README gives defaults for got {"error": null} and
    Gradio's "didn't receive enough input values" traceback in the log (thirtieth hostile round)."""
    url, log_path = app
    video, mask = tiny_clip(tmp_path)
    event, payload = raw_call(url, "segment", [video, [mask], [0], 64])
    assert event == "complete", payload
    assert payload[1]["formats"] == ["davis"] and payload[1]["precision"] == "fp32"
    event, payload = raw_call(url, "suggest_frames", [video, [mask], [0], 64])
    assert event == "complete" and isinstance(payload[0], list), payload
    event, payload = raw_call(url, "suggest_frames", [video])
    assert event == "error" and payload["error"] == "suggest_frames: annotations is missing (it has no default)"
    time.sleep(0.5)
    assert "Traceback" not in log_path.read_text()


def test_a_data_uri_sent_as_a_files_url_is_taken_as_the_same_uri_sent_alone(app, tmp_path):
    """{"url": "data:image/png;base64,...", "path": "m.png", "meta": {"_type": "gradio.FileData"}} was refused with
    advice to send a data: URI, the whole base64 echoed in the error (thirtieth hostile round)."""
    url, log_path = app
    video, mask = tiny_clip(tmp_path)

    def file(uri: str, name: str) -> dict:
        return {"url": uri, "path": name, "meta": {"_type": "gradio.FileData"}}

    event, payload = raw_call(url, "segment", [file(video, "clip.zip"), [file(mask, "m.png")], [0], 64])
    assert event == "complete", payload
    assert payload[1]["annotated_frames"] == [0]
    time.sleep(0.5)
    assert "Traceback" not in log_path.read_text()


def test_a_file_object_naming_a_file_by_this_servers_file_url_is_that_upload(app, tmp_path):
    """{"path": U, "url": U} with U this server's `.../gradio_api/file=<an upload>` was refused as "not a public
    address: upload the file", though it was uploaded; the same U sent as text was taken (forty-eighth hostile
    round). A file URL naming no upload is a URL as any other: this server's own address is not fetched."""
    import base64
    import json

    import httpx

    url, log_path = app
    video, mask = tiny_clip(tmp_path)

    def uploaded(uri: str, name: str) -> str:
        data = base64.b64decode(uri.split(",", 1)[1])
        reply = httpx.post(f"{url}gradio_api/upload", files={"files": (name, data)}, timeout=30)
        return f"{url}gradio_api/file={json.loads(reply.text)[0]}"

    def file(address: str) -> dict:
        return {"path": address, "url": address, "meta": {"_type": "gradio.FileData"}}

    clip, first_mask = uploaded(video, "clip.zip"), uploaded(mask, "m.png")
    event, payload = raw_call(url, "suggest_frames", [file(clip), [file(first_mask)], [0], 64, 1])
    assert event == "complete", payload
    event, payload = raw_call(url, "suggest_frames", [file(f"{url}gradio_api/file=/etc/hostname"), [file(first_mask)]])
    assert event == "error" and payload["error"].startswith("video: ")  # no upload: a URL as any other, not fetched
    assert "this server fetches only public http(s) addresses" in payload["error"]
    time.sleep(0.5)
    assert "Traceback" not in log_path.read_text()


def mcp_segment(url: str, video: str, mask: str):
    """One MCP `segment` call on the 12-frame clip, as an agent makes it; the tool's result."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def call():
        async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await session.call_tool("segment", {"video": video, "annotations": [mask], "frames": [0],
                                                       "size": 64, "formats": ["davis"], "k": 1})

    return asyncio.run(asyncio.wait_for(call(), timeout=600))


@pytest.mark.skipif(not HAS_MCP, reason="needs the MCP extra: pip install 'gradio[mcp]==6.31.0'")
def test_an_mcp_video_percent_encoded_in_lines_without_padding_is_taken_as_the_http_api_takes_it(app, tmp_path):
    """Gradio decodes an MCP video's data: URI as it is: a good video percent-encoded was called damaged, though
    README and the HTTP API take it (fifty-third hostile round); `DATA:` and `HTTP://` are the schemes they are."""
    import textwrap
    from urllib.parse import quote

    url, log_path = app
    video, mask = tiny_clip(tmp_path)
    header, payload = video.split(",", 1)
    wrapped = "\r\n".join(textwrap.wrap(payload.rstrip("="), 76))
    result = mcp_segment(url, "DATA" + header[4:] + "," + quote(wrapped, safe=""), mask)
    assert not result.isError, result.content
    _, summary = ast.literal_eval(next(item.text for item in result.content if item.type == "text"))
    assert summary["frames"] == 12
    result = mcp_segment(url, "HTTP://127.0.0.1:1/clip.mp4", mask)
    text = " ".join(item.text for item in result.content)
    assert result.isError and text.startswith("video: ") and "public" in text, text
    time.sleep(0.5)
    assert "Traceback" not in log_path.read_text()


@pytest.mark.skipif(not HAS_MCP, reason="needs the MCP extra: pip install 'gradio[mcp]==6.31.0'")
@pytest.mark.parametrize(("disk", "words"), [
    ("full", "the server has no room to store your upload (no space left on the device); nothing you made is lost"),
    ("read-only", "the server cannot store your upload (the file system is read-only); nothing you made is lost"),
])
def test_an_mcp_call_the_servers_disk_cannot_take_gets_the_servers_words_and_its_files_go_at_exit(
        tmp_path, checkpoint, disk, words):
    """Gradio's MCP server saves a data: URI, then uploads it to the app: on a full or read-only disk the agent got
    httpx's status line ("Server error '507 Insufficient Storage' for url ...", hostile rounds 44 and 45), and the
    saved files stayed in TMPDIR/gradio after the server stopped."""
    from tests.test_user_problems import tiny_file_system

    video, mask = tiny_clip(tmp_path)
    with tiny_file_system(tmp_path / "small", "64m") as small:
        with start_app(tmp_path / "app.log", ["--weights", str(checkpoint), "--device", "cpu", "--sam-model", "none",
                                              "--no-speed-check", "--mcp"], env={"TMPDIR": str(small)}) as url:
            assert not mcp_segment(url, video, mask).isError  # with room: the call works
            if disk == "full":
                with open(small / "filler", "wb") as filler, contextlib.suppress(OSError):
                    while True:
                        filler.write(b"\0" * (1 << 20))
            else:
                subprocess.run(["mount", "-o", "remount,ro", str(small)], check=True)
            another_video, _ = tiny_clip(tmp_path, comment=b"another zip, never saved before")
            result = mcp_segment(url, another_video, mask)
            subprocess.run(["mount", "-o", "remount,rw", str(small)], check=True)
            (small / "filler").unlink(missing_ok=True)
            # what the refused call saved of the video went: the retry the words advise works (a cut-off copy
            # stayed, and every retry was refused as "the file is empty", forty-sixth hostile round)
            retried = mcp_segment(url, another_video, mask)
            assert not retried.isError, retried.content
        text = " ".join(item.text for item in result.content if item.type == "text")
        assert result.isError and words in text, text
        assert "Server error" not in text and str(small) not in text
        # the MCP server's files went with the work root (Gradio's own empty TMPDIR/gradio/vibe_edit_history stays)
        assert [path.name for path in small.rglob("*") if not path.is_dir()] == []
    assert "Traceback" not in (tmp_path / "app.log").read_text()
