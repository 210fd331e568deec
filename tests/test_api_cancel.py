"""A script's call that is cancelled or abandoned stops using the model (a live app, random weights).

The app runs under tests/timed_model_app.py: each network stage notes when it worked, and each frame's key
encoding takes DELAY_S longer, so a run lasts long enough to be stopped in the middle, and two runs using the
model at once would show as overlapping stages.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import start_app
from tests.helpers import moving_square_frames, square_mask, write_frames, write_palette_mask

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HAS_MCP = importlib.util.find_spec("mcp") is not None
DELAY_S = 0.3  # added to each frame's model work
LONG_FRAMES = 40  # a run of about 40 * DELAY_S = 12 s at least
SHORT_FRAMES = 6
STOPPED_WITHIN_S = 3.0  # after a cancel, the model may finish the frame it computes (DELAY_S and a little)
LONG_SHAPE = "1x3x64x96"  # the network's input for the long clip's 128x96 frames at size 64
SHORT_SHAPE = "1x3x64x64"  # and for the short clip's 128x128 frames


class Server:
    def __init__(self, url: str, model_log: Path, temp: Path):
        self.url, self.model_log, self.temp = url, model_log, temp

    def model_calls(self, since: float = 0.0) -> list[tuple[str, float, float, str]]:
        """(stage, started, ended, input shape) of every network stage started after `since` (time.time())."""
        if not self.model_log.exists():
            return []
        lines = self.model_log.read_text().splitlines()
        calls = [(stage, float(start), float(end), shape)
                 for stage, start, end, shape in (line.split() for line in lines if line.count(" ") == 3)]
        return [call for call in calls if call[1] >= since]

    def frames_encoded(self, shape: str, since: float) -> int:
        return sum(1 for stage, _, _, seen in self.model_calls(since) if stage == "encode_key" and seen == shape)

    def wait_for_frames(self, shape: str, count: int, since: float, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.frames_encoded(shape, since) < count:
            assert time.monotonic() < deadline, f"the run did not reach {count} frames in {timeout:.0f} s"
            time.sleep(0.05)

    def wait_until_idle(self, quiet_s: float = 2.0) -> None:
        """Until the model has done nothing for `quiet_s` (a previous test's run is over)."""
        while True:
            calls = self.model_calls()
            if not calls or time.time() - max(end for _, _, end, _ in calls) > quiet_s:
                return
            time.sleep(0.2)

    def call_folders(self) -> set[Path]:
        return set(self.temp.glob("xmempp-app-*/api/call-*"))


def zipped_clip(folder: Path, count: int, height: int) -> tuple[Path, Path]:
    """(a zip of `count` frames of 128 x `height`, frame 0's mask)."""
    frames = write_frames(folder / "frames", moving_square_frames(count, height=height))
    archive = folder / "clip.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for frame in sorted(frames.iterdir()):
            zipped.write(frame, frame.name)
    return archive, write_palette_mask(folder / "frame_000000.png", square_mask(0, height=height))


@pytest.fixture(scope="module")
def server(tmp_path_factory, checkpoint):
    folder = tmp_path_factory.mktemp("cancel-app")
    temp = folder / "tmp"
    temp.mkdir()
    env = {"XMEMPP_MODEL_LOG": str(folder / "model.log"), "XMEMPP_MODEL_DELAY": str(DELAY_S), "TMPDIR": str(temp)}
    arguments = ["--weights", str(checkpoint), "--device", "cpu", "--sam-model", "none", "--no-speed-check",
                 "--max-runs", "1", *(["--mcp"] if HAS_MCP else [])]
    with start_app(folder / "app.log", arguments, program=ROOT / "tests" / "timed_model_app.py", env=env) as url:
        yield Server(url, folder / "model.log", temp)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> tuple[Path, Path]:
    return zipped_clip(tmp_path_factory.mktemp("long"), LONG_FRAMES, height=96)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> tuple[Path, Path]:
    return zipped_clip(tmp_path_factory.mktemp("short"), SHORT_FRAMES, height=128)


def submit(server: Server, clip: tuple[Path, Path]):
    from gradio_client import Client, handle_file

    video, mask = clip
    client = Client(server.url, verbose=False)
    return client.submit(video=handle_file(video), annotations=[handle_file(mask)], frames=[0], size=64, k=0,
                         api_name="/segment")


def cancel_in_background(job) -> threading.Thread:
    """job.cancel() waits for the server's answer, which may come only when the call ends: not in the test's way."""
    thread = threading.Thread(target=job.cancel, daemon=True)
    thread.start()
    return thread


def last_model_work(server: Server, shape: str, since: float) -> float:
    return max(end for _, _, end, seen in server.model_calls(since) if seen == shape)


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_call_cancelled_while_running_stops_the_model_and_removes_its_folder(server, long_clip):
    server.wait_until_idle()
    began = time.time()
    before = server.call_folders()
    job = submit(server, long_clip)
    server.wait_for_frames(LONG_SHAPE, 3, began)
    folder, = server.call_folders() - before
    cancelled = time.time()
    cancel_in_background(job)
    time.sleep(STOPPED_WITHIN_S + 2)
    frames = server.frames_encoded(LONG_SHAPE, began)
    assert last_model_work(server, LONG_SHAPE, began) - cancelled < STOPPED_WITHIN_S
    assert frames < LONG_FRAMES
    assert wait_for(lambda: not folder.exists(), 5), f"{folder.name} stayed after the call was cancelled"
    time.sleep(2)
    assert server.frames_encoded(LONG_SHAPE, began) == frames  # and nothing more later


def test_a_call_whose_client_is_killed_stops_the_model_and_removes_its_folder(server, long_clip, tmp_path):
    server.wait_until_idle()
    began = time.time()
    before = server.call_folders()
    video, mask = long_clip
    script = (f"from gradio_client import Client, handle_file\nimport time\n"
              f"client = Client({server.url!r}, verbose=False)\n"
              f"client.submit(video=handle_file({str(video)!r}), annotations=[handle_file({str(mask)!r})], frames=[0], "
              f"size=64, k=0, api_name='/segment')\ntime.sleep(600)\n")
    client = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)
    try:
        server.wait_for_frames(LONG_SHAPE, 3, began)
        folder, = server.call_folders() - before
        client.kill()
        killed = time.time()
    finally:
        client.kill()
        client.wait()
    time.sleep(STOPPED_WITHIN_S + 2)
    frames = server.frames_encoded(LONG_SHAPE, began)
    assert last_model_work(server, LONG_SHAPE, began) - killed < STOPPED_WITHIN_S
    assert frames < LONG_FRAMES
    assert wait_for(lambda: not folder.exists(), 5), f"{folder.name} stayed after its client was killed"


def test_a_call_cancelled_while_waiting_for_its_turn_never_runs(server, long_clip, short_clip):
    server.wait_until_idle()
    began = time.time()
    running = submit(server, long_clip)
    server.wait_for_frames(LONG_SHAPE, 2, began)
    waiting = submit(server, short_clip)
    time.sleep(1.5)  # it has joined the run queue behind the running call
    cancel_in_background(waiting).join(timeout=5)
    cancel_in_background(running)
    server.wait_until_idle(quiet_s=DELAY_S + 3)
    assert server.frames_encoded(SHORT_SHAPE, began) == 0


def test_the_next_call_gets_the_model_only_after_the_cancelled_calls_frame(server, long_clip, short_clip):
    server.wait_until_idle()
    began = time.time()
    dead = submit(server, long_clip)
    server.wait_for_frames(LONG_SHAPE, 2, began)
    waiting = submit(server, short_clip)
    time.sleep(1.5)  # it waits in the run queue behind the running call
    cancelled = time.time()
    cancel_in_background(dead)
    masks_zip, summary = waiting.result(timeout=120)
    assert Path(masks_zip).is_file() and summary["frames"] == SHORT_FRAMES
    calls = server.model_calls(began)
    dead_ended = max(end for _, _, end, shape in calls if shape == LONG_SHAPE)
    next_started = min(start for _, start, _, shape in calls if shape == SHORT_SHAPE)
    assert next_started >= dead_ended  # never two runs at once with --max-runs 1
    assert next_started - cancelled < STOPPED_WITHIN_S + 2  # not after the dead call's whole run


MCP_AGENT = """
import asyncio, base64, sys
from pathlib import Path
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

def uri(path, mime):
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode()

async def call():
    async with streamable_http_client(sys.argv[1] + "gradio_api/mcp/") as (read, write, _), \\
            ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("segment", {"video": uri(sys.argv[2], "application/zip"),
                                            "annotations": [uri(sys.argv[3], "image/png")], "frames": [0],
                                            "size": 64, "k": 0})

asyncio.run(call())
"""


@pytest.mark.skipif(not HAS_MCP, reason="needs the MCP extra: pip install 'gradio[mcp]==6.31.0'")
def test_an_mcp_agent_that_goes_away_stops_its_run(server, long_clip):
    """The MCP server runs a tool through a client of its own, which never goes away: an agent killed 10 s into a
    call left its run going for 5.5 minutes more, holding the model (forty-sixth hostile round)."""
    server.wait_until_idle()
    began = time.time()
    before = server.call_folders()
    agent = subprocess.Popen([sys.executable, "-c", MCP_AGENT, server.url, *map(str, long_clip)])
    try:
        server.wait_for_frames(LONG_SHAPE, 3, began)
    finally:
        agent.kill()
        agent.wait()
    gone = time.time()
    assert wait_for(lambda: not server.call_folders() - before, timeout=30), "the call's folder stayed"
    assert last_model_work(server, LONG_SHAPE, began) - gone < 30
    assert server.frames_encoded(LONG_SHAPE, began) < LONG_FRAMES
    print(f"stopped {last_model_work(server, LONG_SHAPE, began) - gone:.1f} s after the agent went")
