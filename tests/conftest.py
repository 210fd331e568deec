"""Shared fixtures: a random-weight checkpoint in the official layout, and small generated clips."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import SHARED, moving_square_frames, square_mask, write_frames, write_palette_mask
from xmempp.model.weights import load_network, save_random_checkpoint

__all__ = ["SHARED", "moving_square_frames", "square_mask", "write_frames", "write_palette_mask"]  # older imports


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """Random weights (seed 1) in the official layout; their masks mean nothing as segmentation."""
    return save_random_checkpoint(tmp_path_factory.mktemp("weights") / "XMem-random.pth", seed=1)


@pytest.fixture(scope="session")
def network(checkpoint):
    return load_network(checkpoint, device="cpu")


@pytest.fixture
def square_clip(tmp_path) -> tuple[Path, Path]:
    """12 frames of 96x128 with palette masks for every frame (id 1): (frames folder, masks folder)."""
    frames = write_frames(tmp_path / "JPEGImages", moving_square_frames(12))
    masks = tmp_path / "Annotations"
    for i in range(12):
        write_palette_mask(masks / f"frame_{i:06d}.png", square_mask(i))
    return frames, masks


def small_sam_config(image_size: int = 128):
    """A SAM 2 architecture a few hundred times smaller than sam2.1-hiera-tiny, quick on 2 CPU cores."""
    from transformers import Sam2Config

    # Hiera: 4 stages of 8-64 channels on a 128-pixel input; a global-attention block may not open a stage.
    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=8, image_size=[image_size, image_size],
                    blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[8, 16, 32, 64],
                    num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4],
                    global_attention_blocks=[3], window_positional_embedding_background_size=[2, 2])
    vision = dict(model_type="sam2_vision_model", backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
                  backbone_feature_sizes=[[image_size // s] * 2 for s in (4, 8, 16)], fpn_hidden_size=32)
    return Sam2Config(vision_config=vision, prompt_encoder_config=dict(hidden_size=32, image_size=image_size),
                      mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_attention_heads=2,
                                               iou_head_hidden_dim=32))


@pytest.fixture(scope="session")
def sam_model_folder(tmp_path_factory) -> Path:
    """A small random-weight SAM 2 model saved with save_pretrained; its masks mean nothing."""
    from xmempp.prompts import save_random_model

    return save_random_model(tmp_path_factory.mktemp("sam") / "sam2-random", small_sam_config(), seed=0)


# ----- the app's handlers without a browser (tests/test_app_*.py) ----------------------------------------------
@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """The app's example clip in the handler tests: 8 frames of 128x96 with an orange square moving right."""
    from demo.media import write_video
    from tests.app_helpers import clip_frames

    return write_video(tmp_path_factory.mktemp("clips") / "square.mp4", clip_frames(), fps=8)


@pytest.fixture
def settings(network, clip, tmp_path):
    from demo.media import Limits
    from demo.state import AppSettings

    return AppSettings(network=network, limits=Limits(max_frames=50, max_side=1280, max_upload_mb=5),
                       work_root=tmp_path / "work", example=clip, size=64)


@pytest.fixture
def handlers(settings):
    from demo.handlers import Handlers

    return Handlers(settings)


# ----- the app as a server, for the browser tests (tests/test_browser_*.py, tests/test_clicks_browser.py) ------
ROOT = Path(__file__).resolve().parents[1]
BROWSER_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
APP_MAX_FRAMES = 16  # the example clip is cut to this many frames in the browser tests


def chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def free_port() -> int:
    """$XMEMPP_TEST_PORT when set (machines that give each user their own ports), else any free port."""
    import os
    import socket

    if os.environ.get("XMEMPP_TEST_PORT"):
        return int(os.environ["XMEMPP_TEST_PORT"])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def start_app(log_path: Path, arguments: list[str], program: Path | None = None,
              env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `python app.py ARGUMENTS` on a free local port, its output in `log_path`, while the block runs; gives its
    URL once it answers. The app's API tests use it as it is, the browser tests through `serve_app`. `program`
    runs instead of app.py (a wrapper around it), with `env` added to the environment."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "XMEMPP_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    log = open(log_path, "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen([sys.executable, str(program or ROOT / "app.py"), *arguments], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py exited with {process.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"app.py did not answer within 120 s; see {log_path}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def serve_app(folder: Path, arguments: list[str]):
    """`start_app` for the browser tests, which skip without Chromium; yields the app's URL."""
    if chromium() is None:
        pytest.skip("no chromium binary (apt-get install -y chromium) for the browser test")
    with start_app(folder / "app.log", arguments) as url:
        yield url


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app with random XMem weights, the example cut to 16 frames, processing size 96."""
    checkpoint = save_random_checkpoint(tmp_path_factory.mktemp("weights") / "random.pth", seed=1)
    yield from serve_app(tmp_path_factory.mktemp("app"), [
        "--weights", str(checkpoint), "--device", "cpu", "--max-frames", str(APP_MAX_FRAMES), "--size", "96"])


@pytest.fixture(scope="module")
def browser(app_url):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # 2 shared cores: an event can wait seconds in the queue
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), headless=True, args=BROWSER_ARGS)
        yield browser
        browser.close()
