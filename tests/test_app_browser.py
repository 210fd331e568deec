"""The app in headless Chromium against `python app.py` (random weights: the masks mean nothing).

Few sessions, each checking several things a person does in a row: what the editor shows is what is saved and
exported; feedback during runs (queue, stop, viewer, timeline); a phone screen; and the whole loop. Screenshots of
each step go to artifacts/screenshots/.
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
    """$XMEMPP_TEST_PORT when set (machines that give each user their own ports), else any free port."""
    if os.environ.get("XMEMPP_TEST_PORT"):
        return int(os.environ["XMEMPP_TEST_PORT"])
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
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # 2 shared cores: an event can wait seconds in the queue
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


def picture_box(page) -> dict:
    """Where the frame's picture lies on the page inside the editor's canvas (columns and rows mostly not white)."""
    import numpy as np
    from PIL import Image

    canvas = page.locator("#editor .pixi-target canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    pixels = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB")).astype(int)
    dark = pixels.sum(axis=2) < 600
    columns, rows = np.flatnonzero(dark.mean(axis=0) > 0.3), np.flatnonzero(dark.mean(axis=1) > 0.3)
    scale_x, scale_y = box["width"] / pixels.shape[1], box["height"] / pixels.shape[0]
    return {"x": box["x"] + columns[0] * scale_x, "y": box["y"] + rows[0] * scale_y,
            "width": (columns[-1] + 1 - columns[0]) * scale_x, "height": (rows[-1] + 1 - rows[0]) * scale_y}


def stroke(page, picture: dict, points: list[tuple[float, float]], frame_size: tuple[int, int]) -> None:
    """A brush stroke through `points` given in frame pixels (x, y)."""
    height, width = frame_size

    def at(x: float, y: float) -> tuple[float, float]:
        return picture["x"] + (x + 0.5) * picture["width"] / width, picture["y"] + (y + 0.5) * picture["height"] / height

    canvas = page.locator("#editor .pixi-target canvas").bounding_box()
    page.mouse.move(canvas["x"] + canvas["width"] - 4, canvas["y"] + canvas["height"] / 2)  # margin first
    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(*point))
    page.mouse.up()


def screen_colour(page, picture: dict, point: tuple[float, float], frame_size: tuple[int, int]) -> tuple:
    import numpy as np
    from PIL import Image

    height, width = frame_size
    x = picture["x"] + (point[0] + 0.5) * picture["width"] / width
    y = picture["y"] + (point[1] + 0.5) * picture["height"] / height
    shot_ = Image.open(io.BytesIO(page.screenshot(clip={"x": x - 1, "y": y - 1, "width": 3, "height": 3})))
    return tuple(int(v) for v in np.asarray(shot_.convert("RGB"))[1, 1])


def download_zip(page) -> zipfile.ZipFile:
    link = page.locator("#download a[href*='xmempp-masks.zip']").first
    href = link.get_attribute("href")
    data = page.request.get(href if href.startswith("http") else page.url.rstrip("/") + href).body()
    return zipfile.ZipFile(io.BytesIO(data))


def exported_mask(archive: zipfile.ZipFile, name: str):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(archive.read(name))))


def open_frame_by_typing(page, index: int) -> None:
    from playwright.sync_api import expect

    box = page.locator("#frame input[type=number]")
    box.fill(str(index))
    box.press("Enter")
    expect(page.locator("#editor-message")).to_contain_text(f"Frame {index} of", timeout=30_000)
    editor_ready(page)


def click_timeline(page, frame: int, frames: int) -> None:
    from demo.timeline import MARGIN, WIDTH

    image = page.locator("#timeline img")
    box = image.bounding_box()
    x = (MARGIN + (frame + 0.5) * (WIDTH - 2 * MARGIN) / frames) * box["width"] / WIDTH
    image.click(position={"x": x, "y": box["height"] / 2})


FRAME_SIZE = (256, 384)  # the example clip's (H, W)
CIRCLE = (26, 57, 93, 123)  # the red circle of the example's frame 0: left, top, right, bottom


def test_what_the_editor_shows_is_what_is_saved_and_exported(page):
    """Typing a frame opens it; Clear mask keeps the picture; see-through strokes are saved where they were drawn;
    arrow keys move frames; a saved mask comes back aligned; GrabCut over a saved mask relabels the region."""
    import numpy as np
    from playwright.sync_api import expect

    page.click("#example")
    expect_status(page, r"^Loaded the example clip")
    editor_ready(page)
    expect(page.locator('#editor button[aria-label="Clear canvas"]')).to_be_hidden()

    open_frame_by_typing(page, 7)
    expect(page.locator("#viewer")).to_contain_text("frame 7")
    page.click("#clear-mask")
    expect(page.locator("#editor-message")).to_contain_text("Cleared the mask of frame 7")
    editor_ready(page)
    picture = picture_box(page)
    assert abs(picture["width"] / picture["height"] - 384 / 256) < 0.05, picture  # the picture is still there
    before = screen_colour(page, picture, (200, 60), FRAME_SIZE)
    stroke(page, picture, [(180, 60), (220, 60), (260, 60)], FRAME_SIZE)
    painted = screen_colour(page, picture, (220, 60), FRAME_SIZE)
    assert painted != before and min(painted[1:]) > 12, painted  # see-through: the picture shows under red
    shot(page, "11-frame-7-painted")
    page.click("#save-annotation")
    expect_status(page, r"^Saved the annotation of frame 7 \(objects 1\)")
    expect(page.locator("#editor-message")).to_contain_text("Saved the annotation of frame 7")

    click_timeline(page, frame=3, frames=16)  # opens frame 3, and takes the focus away from the text boxes
    expect(page.locator("#editor-message")).to_contain_text("Frame 3 of", timeout=30_000)
    open_frame_by_typing(page, 7)
    name = page.locator("#object-name :is(input, textarea)")
    name.fill("")
    name.press_sequentially("sun")  # an "s" typed in a text box is text, not the Save shortcut
    name.press("Enter")
    expect_status(page, r"^Object 1 is now called sun")
    expect(page.locator("#object")).to_contain_text("sun")
    name.blur()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#frame input[type=number]")).to_have_value("8")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#frame input[type=number]")).to_have_value("7")
    expect(page.locator("#editor-message")).to_contain_text("Frame 7 of 15: a reference")
    editor_ready(page)
    page.keyboard.press("s")  # saving the reopened mask unchanged must store the same mask
    expect_status(page, r"^Replaced the annotation of frame 7 \(objects 1\)")

    open_frame_by_typing(page, 0)
    picture = picture_box(page)
    stroke(page, picture, [(45, 80), (70, 100), (60, 110)], FRAME_SIZE)  # object 1 scribbled inside the circle
    page.click("#save-annotation")
    expect_status(page, r"^Saved the annotation of frame 0 \(objects 1\)")
    page.click("#add-object")
    expect(page.locator("#object input[type=radio]:checked")).to_have_value("2")
    expect(page.locator("#object-name :is(input, textarea)")).to_have_value("Object 2")
    page.wait_for_timeout(1000)  # the brush arrives in two updates (see demo/ui.py)
    editor_ready(page)
    picture = picture_box(page)
    left, top, right, bottom = CIRCLE
    stroke(page, picture, [(left - 8, top - 8), (right + 8, top - 8), (right + 8, bottom + 8), (left - 8, bottom + 8),
                           (left - 8, top - 8)], FRAME_SIZE)  # a rough box around the circle
    page.click("#grabcut")
    expect(page.locator("#editor-message")).to_contain_text("GrabCut gave Object 2")
    editor_ready(page)
    page.click("#save-annotation")
    expect_status(page, r"^Replaced the annotation of frame 0 \(objects 1, 2\)|^Replaced the annotation of frame 0 \(objects 2\)")
    shot(page, "12-grabcut-saved")

    page.click("#export")
    expect_status(page, r"^Exported masks")
    expect(page.locator("#export-message")).to_contain_text("Exported masks")
    with download_zip(page) as archive:
        seven = exported_mask(archive, "UserAnnotations/frame_000007.png")
        zero = exported_mask(archive, "UserAnnotations/frame_000000.png")
        names = set(archive.namelist())
        objects = archive.read("objects.csv").decode()
    assert {"frames.csv", "objects.csv"} <= names and "1,sun" in objects
    rows, columns = np.nonzero(seven)
    assert set(np.unique(seven)) == {0, 1}
    assert (seven[60, 185:256] == 1).all(), seven[60, 175:265]  # the stroke, where it was drawn
    assert rows.min() >= 45 and rows.max() <= 75 and columns.min() >= 165 and columns.max() <= 275
    circle = np.zeros(FRAME_SIZE, bool)
    yy, xx = np.mgrid[:256, :384]
    circle[(yy - 90) ** 2 + (xx - 59.5) ** 2 < 28 ** 2] = True
    assert (zero[circle] == 2).mean() > 0.9 and not (zero[circle] == 1).any()


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

    page.click("#add-object")
    expect(page.locator("#object-name :is(input, textarea)")).to_have_value("Object 2")
    page.wait_for_timeout(1000)  # the brush arrives in two updates (see demo/ui.py)
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


@pytest.fixture
def browser(app_url):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        yield browser
        browser.close()


def visitor(browser, app_url, **options):
    page = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options}).new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url)
    page.click("#example")
    expect_status(page, r"^Loaded the example clip")
    editor_ready(page)
    return page


def annotate_frame_0(page) -> None:
    paint(page, (0.3, 0.35), (0.45, 0.5))
    page.click("#save-annotation")
    expect_status(page, r"^Saved the annotation of frame 0")


def test_runs_say_where_they_stand_and_stop_keeps_the_previous_masks(browser, app_url):
    """A second visitor's Propagate shows its place in the queue within 2 s; Stop keeps the previous run's masks
    for frames not reached; the viewer follows the editor's frame; the timeline shows the run; loading another
    video keeps unexported work."""
    from playwright.sync_api import expect

    first, second = visitor(browser, app_url), visitor(browser, app_url)
    annotate_frame_0(first)
    annotate_frame_0(second)
    first.locator("#size label", has_text="480").click()  # a slow run (the clip at 720x480) holds the model
    expect_status(first, r"^Processing size 480")
    first.click("#propagate")
    expect(first.locator("#progress")).to_contain_text(re.compile(r"[1-9] / 16 frames"), timeout=120_000)
    asked = time.monotonic()
    second.click("#propagate")
    expect(second.locator("#progress")).to_contain_text("Waiting for the model: 1 run(s) ahead of yours",
                                                        timeout=5_000)
    assert time.monotonic() - asked < 2.5
    shot(second, "13-queued")
    first.click("#stop")
    status = expect_status(first, r"^Stopped after \d+ of 16 frames")
    expect_status(second, r"^Propagated 16 frames")
    expect(second.locator("#viewer")).to_contain_text("Result · frame 0")
    second.close()

    first.locator("#size label", has_text="96").click()
    expect_status(first, r"^Processing size 96")
    first.click("#propagate")
    expect_status(first, r"^Propagated 16 frames", timeout=120_000)
    open_frame_by_typing(first, 5)
    expect(first.locator("#viewer")).to_contain_text("Result · frame 5")
    first.locator("#size label", has_text="480").click()
    expect_status(first, r"^Processing size 480")
    first.click("#propagate")
    expect(first.locator("#progress")).to_contain_text(re.compile(r"[1-9] / 16 frames"), timeout=120_000)
    first.click("#stop")
    status = expect_status(first, r"^Stopped after \d+ of 16 frames")
    assert "keep the previous run's masks" in status, status
    open_frame_by_typing(first, 15)
    expect(first.locator("#viewer")).to_contain_text("Result · frame 15 · from the previous run")
    expect(first.locator("#editor-message")).to_contain_text("kept from the previous run")
    assert first.locator("#timeline img").get_attribute("src")
    shot(first, "14-stopped-rerun")

    first.click("#example")
    expect_status(first, r"Your unexported work on the previous video is kept in previous-work-1.zip")
    expect(first.locator("#download a[href*='previous-work-1.zip']")).to_have_count(1)


def test_a_phone_screen_shows_the_editor_and_the_run_beside_propagate(browser, app_url):
    """At 390x844: the editor's picture and toolbar fit the screen without covering each other; Propagate and
    the run's progress are on screen together; no idle progress bar; gallery captions below their thumbnails."""
    from playwright.sync_api import expect

    page = visitor(browser, app_url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    shot(page, "15-phone-loaded")
    expect(page.locator("#progress progress")).to_have_count(0)
    canvas = page.locator("#editor .pixi-target canvas")
    canvas.scroll_into_view_if_needed()
    picture = picture_box(page)
    tools = page.locator("#editor button[aria-label=Brush]").bounding_box()
    label = page.locator("#editor label, #editor [data-testid=block-label]").first.bounding_box()
    editor, panel = page.locator("#editor").bounding_box(), page.locator("#editor .top-panel").bounding_box()
    assert picture["x"] >= 0 and picture["x"] + picture["width"] <= 390
    assert tools["x"] >= editor["x"] and tools["y"] + tools["height"] <= editor["y"] + editor["height"]
    assert label["x"] + label["width"] <= panel["x"], (label, panel)  # the label is not cut by the toolbar
    assert tools["x"] + tools["width"] <= picture["x"] or tools["y"] >= picture["y"] + picture["height"] \
        or tools["y"] + tools["height"] <= picture["y"], (tools, picture)
    assert label["y"] + label["height"] <= picture["y"] + 1, (label, picture)
    annotate_frame_0(page)
    page.locator("#propagate").scroll_into_view_if_needed()
    page.locator("#propagate").tap()
    expect(page.locator("#progress")).to_contain_text(re.compile(r"\d+ / 16 frames"), timeout=120_000)
    button, progress = page.locator("#propagate").bounding_box(), page.locator("#progress").bounding_box()
    assert button["y"] >= 0 and progress["y"] + progress["height"] <= 844
    shot(page, "16-phone-propagating")
    expect_status(page, r"^Propagated 16 frames", timeout=120_000)
    thumbnail = page.locator("#references button.thumbnail-item").first
    image, caption = thumbnail.locator("img").bounding_box(), thumbnail.locator(".caption-label").bounding_box()
    item = thumbnail.bounding_box()
    assert caption["y"] >= image["y"] + image["height"] - 1  # below the picture, not over it
    assert caption["y"] + caption["height"] <= item["y"] + item["height"] + 1  # and not clipped
