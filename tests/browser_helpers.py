"""What the browser tests share: driving the editor, reading what the page says and where, the example clip.

The app runs as a server from tests/conftest.py (`app_url`, `browser`); screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
MAX_FRAMES = 16  # tests/conftest.py's APP_MAX_FRAMES
K = 3
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def visitor(browser, app_url: str, load: bool = True, **options):
    """A new visitor's page (a desktop unless `options` say otherwise), with the example loaded."""
    page = browser.new_context(**{**DESKTOP, **options}).new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url)
    if load:
        load_example(page)
    return page


def expect_text(page, selector: str, pattern: str, timeout: float = 120_000) -> str:
    """Wait until the element at `selector` says something matching `pattern`; return what it says."""
    from playwright.sync_api import expect

    element = page.locator(selector)
    if pattern.startswith("^"):  # the element's text starts after the markup's white space
        pattern = r"^\s*" + pattern[1:]
    expect(element).to_contain_text(re.compile(pattern), timeout=timeout)
    return element.inner_text()


def expect_note(page, pattern: str, timeout: float = 120_000) -> str:
    """The note under the editor's buttons (the result of what was done to the editor, frames and objects)."""
    return expect_text(page, "#editor-message", pattern, timeout)


def expect_run(page, pattern: str, timeout: float = 120_000) -> str:
    """The run's line beside Propagate."""
    return expect_text(page, "#progress", pattern, timeout)


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
    SHOTS.mkdir(parents=True, exist_ok=True)
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


def download_zip(page, name: str = "xmempp-masks.zip") -> zipfile.ZipFile:
    link = page.locator(f"#download a[href*='{name}']").first
    href = link.get_attribute("href")
    data = page.request.get(href if href.startswith("http") else page.url.rstrip("/") + href).body()
    return zipfile.ZipFile(io.BytesIO(data))


def exported_mask(archive: zipfile.ZipFile, name: str):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(archive.read(name))))


def type_frame(page, index: int) -> None:
    """What a person does to open a frame by its number: type it in Frame's box and press Enter."""
    box = page.locator("#frame input[type=number]")
    box.fill(str(index))
    box.press("Enter")


def open_frame_by_typing(page, index: int) -> None:
    from playwright.sync_api import expect

    type_frame(page, index)
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
EXAMPLE_STEPS = 48  # demo/make_example.py's default: frame i shows the scene at t = i / 48


def disc_centre(index: int) -> tuple[float, float]:
    """Where (x, y) the centre of the example's red disc is in frame `index` (see demo/make_example.py)."""
    t = index / EXAMPLE_STEPS
    return 60 + 260 * t, 90 + 50 * math.sin(2 * math.pi * t)


def expect_editor_shows_frame(page, index: int, timeout: float = 30) -> None:
    """The editor's picture is frame `index`: the red disc is where that frame has it (also under a see-through
    mask), which it is not in the frames before and after."""
    deadline = time.monotonic() + timeout
    while True:
        red, green, blue = screen_colour(page, picture_box(page), disc_centre(index), FRAME_SIZE)
        if red > green and red - blue > 60:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the editor does not show frame {index}: no red disc at {disc_centre(index)} "
                        f"(the colour there is {red, green, blue})")
        time.sleep(0.5)


ON_SCREEN_JS = """(text) => [...document.querySelectorAll('body *')].some((element) => {
  const field = element.tagName === 'TEXTAREA' || element.tagName === 'INPUT';
  const says = field ? element.value : (element.childElementCount === 0 ? element.textContent : '');
  if (!says || !says.includes(text)) return false;
  const box = element.getBoundingClientRect();
  return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== 'hidden' &&
    box.bottom > 0 && box.right > 0 && box.top < window.innerHeight && box.left < window.innerWidth;
})"""


def expect_on_screen(page, text: str, timeout: float = 30_000) -> None:
    """Something visible inside the window, where the person is (a note beside the control, a toast, or the
    status box if it is in view), says `text`. The test does not scroll to look for it."""
    from playwright.sync_api import Error

    try:
        page.wait_for_function(ON_SCREEN_JS, arg=text, timeout=timeout)
    except Error:
        status = page.locator("#status textarea").input_value()
        pytest.fail(f"nothing on screen says {text!r} (the status box, out of view, says {status!r})")


def load_example(page) -> None:
    page.click("#example")
    expect_status(page, r"^Loaded the example clip")
    editor_ready(page)


def add_objects(page, up_to: int) -> None:
    """Click Add object until the picker lists `up_to` objects, each click as soon as the one before shows (Gradio
    drops a click made while an addition is on its way: clicked again if so)."""
    from playwright.sync_api import expect

    choices = page.locator("#object input[type=radio]")
    while (listed := choices.count()) < up_to:
        page.click("#add-object")
        with contextlib.suppress(AssertionError):
            expect(choices).to_have_count(listed + 1)


def choose_object(page, object_id: int) -> None:
    """Choose an object for the brush, adding objects first when the app lists fewer. The brush needs no waiting: a
    stroke takes the chosen object's colour (demo/brush.py)."""
    from playwright.sync_api import expect

    add_objects(page, object_id)
    page.locator("#object label").filter(has=page.locator(f'input[value="{object_id}"]')).click()
    expect(page.locator("#object input[type=radio]:checked")).to_have_value(str(object_id))
    editor_ready(page)


BRUSH_IS_JS = """([r, g, b]) => {
  const style = (document.querySelector('#editor [aria-label=Color]')?.getAttribute('style') ?? '').toLowerCase();
  const hex = '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return style.includes(`rgb(${r}, ${g}, ${b})`) || style.includes(hex);
}"""


def expect_brush(page, object_id: int) -> None:
    """Wait until the editor's colour swatch shows the object's brush colour (it follows the picker a moment later:
    see demo/brush.py)."""
    from demo.layers import object_colour

    page.wait_for_function(BRUSH_IS_JS, arg=list(object_colour(object_id)))


LINK_JS = "() => document.querySelector(\"#download a[href*='xmempp-masks.zip']\")?.getAttribute('href') ?? ''"


def export(page) -> zipfile.ZipFile:
    """Press Export and read the zip it gives (a zip with other contents has another address)."""
    from playwright.sync_api import Error

    before = page.evaluate(LINK_JS)
    page.click("#export")
    expect_text(page, "#export-message", r"Exported masks")
    with contextlib.suppress(Error):  # the same contents as before have the same address
        page.wait_for_function(f"() => ({LINK_JS})() !== {before!r}", timeout=5_000)
    return download_zip(page)


def annotate_frame_0(page) -> None:
    paint(page, (0.3, 0.35), (0.45, 0.5))
    page.click("#save-annotation")
    expect_note(page, r"^Saved the annotation of frame 0")
