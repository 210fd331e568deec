"""The whole loop in headless Chromium against `python app.py` (random weights: the masks mean nothing).

Example clip -> paint frame 0 -> save -> propagate -> k suggestions -> open one -> paint, save -> propagate again ->
export, and the zip's contents. Screenshots of each step go to artifacts/screenshots/.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from xmempp.model.weights import save_random_checkpoint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
BROWSER_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
MAX_FRAMES = 16
K = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium binary (apt-get install -y chromium) for the browser test")
    checkpoint = save_random_checkpoint(tmp_path_factory.mktemp("weights") / "random.pth", seed=1)
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "XMEMPP_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(tmp_path_factory.mktemp("app") / "app.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--weights", str(checkpoint), "--device", "cpu",
                                "--max-frames", str(MAX_FRAMES), "--size", "96"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py exited with {process.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("app.py did not answer within 120 s")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def page(app_url):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        page.goto(app_url)
        yield page
        browser.close()


def expect_status(page, pattern: str, timeout: float = 120_000) -> str:
    from playwright.sync_api import expect

    box = page.locator("#status textarea")
    expect(box).to_have_value(re.compile(pattern), timeout=timeout)
    return box.input_value()


def editor_ready(page) -> None:
    """Strokes drawn while the editor shows its loading overlay are dropped: wait for it to hide."""
    from playwright.sync_api import expect

    expect(page.locator("#editor > [data-testid=status-tracker]")).to_have_class(re.compile("hide"))
    page.wait_for_timeout(300)


def paint(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A stroke between two points given as fractions of the drawing canvas (its centre holds the picture)."""
    page.locator("#editor .pixi-target canvas").scroll_into_view_if_needed()
    box = page.locator("#editor .pixi-target canvas").bounding_box()

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy

    page.mouse.move(box["x"] + 4, box["y"] + box["height"] / 2)  # the margin first, then the picture
    page.mouse.move(*at(*start))
    page.mouse.down()
    for step in range(1, 4):
        page.mouse.move(*at(start[0] + (end[0] - start[0]) * step / 3, start[1] + (end[1] - start[1]) * step / 3))
    page.mouse.up()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_the_whole_loop_in_a_browser(page):
    from playwright.sync_api import expect

    shot(page, "00-start")
    page.click("#example")
    status = expect_status(page, r"^Loaded the example clip")
    assert f"{MAX_FRAMES} frames" in status and "cut to its first" in status
    editor_ready(page)
    shot(page, "01-example-loaded")

    paint(page, (0.3, 0.35), (0.45, 0.5))
    shot(page, "02-painted-frame-0")
    page.click("#save-annotation")
    expect_status(page, r"^Saved the annotation of frame 0 \(objects 1\)")
    expect(page.locator("#references button.thumbnail-item")).to_have_count(1)
    expect(page.locator("#references")).to_contain_text("frame 0")
    shot(page, "03-saved-frame-0")

    page.locator("#k input[type=number]").fill(str(K))
    page.locator("#k input[type=number]").press("Enter")
    page.click("#propagate")
    expect_status(page, rf"^Propagated {MAX_FRAMES} frames.*{K} suggested frame")
    expect(page.locator("#progress")).to_contain_text(f"{MAX_FRAMES} / {MAX_FRAMES} frames")
    suggestions = page.locator("#suggestions button.thumbnail-item")
    expect(suggestions).to_have_count(K)
    expect(page.locator("#result-video video")).to_have_count(1)
    shot(page, "04-propagated")

    caption = page.locator("#suggestions .caption-label").first.inner_text()
    suggested = int(re.match(r"frame (\d+)", caption).group(1))
    suggestions.first.click()
    expect_status(page, rf"^Suggested frame {suggested}")
    expect(page.locator("#frame input[type=number]")).to_have_value(str(suggested))
    editor_ready(page)
    shot(page, "05-suggestion-in-editor")

    page.locator("#object label", has_text="Object 2").click()
    editor_ready(page)
    paint(page, (0.55, 0.6), (0.65, 0.7))
    page.click("#save-annotation")
    status = expect_status(page, rf"^Saved the annotation of frame {suggested} \(objects ")
    assert "2" in status.split("objects ")[1].split(")")[0]
    expect(page.locator("#references button.thumbnail-item")).to_have_count(2)
    shot(page, "06-saved-suggestion")

    page.click("#propagate")
    expect_status(page, rf"^Propagated {MAX_FRAMES} frames")
    shot(page, "07-propagated-again")

    page.click("#export")
    expect_status(page, rf"^Exported masks for {MAX_FRAMES} of {MAX_FRAMES} frames and 2 reference")
    link = page.locator("#download a[href*='xmempp-masks.zip']").first
    expect(link).to_have_count(1)
    page.locator("#download").scroll_into_view_if_needed()
    shot(page, "08-exported")
    page.screenshot(path=str(SHOTS / "09-full-page.png"), full_page=True)

    href = link.get_attribute("href")
    data = page.request.get(href if href.startswith("http") else page.url.rstrip("/") + href).body()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
    assert {f"Annotations/frame_{i:06d}.png" for i in range(MAX_FRAMES)} <= names
    assert {"UserAnnotations/frame_000000.png", f"UserAnnotations/frame_{suggested:06d}.png"} <= names
    assert "overlay.mp4" in names


def test_stop_ends_a_run_and_keeps_the_frames_done(page):
    from playwright.sync_api import expect

    page.click("#example")
    expect_status(page, r"^Loaded the example clip")
    editor_ready(page)
    paint(page, (0.3, 0.35), (0.45, 0.5))
    page.click("#save-annotation")
    expect_status(page, r"^Saved the annotation of frame 0")
    page.click("#propagate")
    expect(page.locator("#progress")).to_contain_text(re.compile(rf"[1-9] / {MAX_FRAMES} frames"))
    page.click("#stop")
    status = expect_status(page, r"^Stopped after \d+ of")
    done = int(re.match(r"Stopped after (\d+) of", status).group(1))
    assert 1 <= done < MAX_FRAMES and "the frames done are kept" in status
    expect(page.locator("#progress")).to_contain_text(f"stopped: {done} / {MAX_FRAMES} frames done")
    shot(page, "10-stopped")
