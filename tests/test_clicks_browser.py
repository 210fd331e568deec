"""Click to segment in headless Chromium, on a desktop (mouse) and a phone (taps), against `python app.py`.

The app gets a small random-weight SAM 2 saved by the test (`--sam-model <folder>`; nothing is downloaded) and no
XMem weights: clicks and Save need none. The masks mean nothing. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest

from tests.browser_helpers import SHOTS
from tests.conftest import serve_app, small_sam_config
from xmempp.prompts import save_random_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app with a small random SAM 2 and no XMem weights, the example cut to 4 frames."""
    sam = save_random_model(tmp_path_factory.mktemp("sam") / "sam2-random", small_sam_config(), seed=0)
    yield from serve_app(tmp_path_factory.mktemp("app"), ["--sam-model", str(sam), "--device", "cpu",
                                                          "--max-frames", "4"])


def expect_value(page, selector: str, pattern: str) -> str:
    from playwright.sync_api import expect

    box = page.locator(selector)
    expect(box).to_have_value(re.compile(pattern), timeout=120_000)
    return box.input_value()


def click_on_picture(page, fx: float, fy: float, tap: bool) -> None:
    """A click (or a tap) at a fraction of the click picture's width and height."""
    picture = page.locator("#click-image img")
    picture.evaluate("element => element.scrollIntoView({block: 'center'})")
    box = picture.bounding_box()
    x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
    # Nothing may lie over the spot (toasts let taps through since they moved to the bottom; this keeps it so).
    page.wait_for_function("([x, y]) => document.elementFromPoint(x, y)?.closest('#click-image') != null", arg=[x, y])
    if tap:
        page.touchscreen.tap(x, y)
    else:
        page.mouse.click(x, y)


def layer_stays_on_the_picture(page) -> bool:
    """Whether the editor's bottom margin (under the picture, at 1280x800) is blank, as it is unless a layer is
    drawn offset from the picture (Gradio once centred it in an 800x800 area, below the picture)."""
    import io

    import numpy as np
    from PIL import Image

    canvas = page.locator("#editor .pixi-target canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    margin = {"x": box["x"] + box["width"] * 0.2, "y": box["y"] + box["height"] - 12, "width": box["width"] * 0.6,
              "height": 8}
    pixels = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=margin))).convert("RGB"), np.int16)
    return int(np.abs(pixels - pixels[0, 0]).max()) < 16


def click_to_segment(page, name: str, tap: bool) -> None:
    """Example clip -> add object 2 -> click mode -> a click on the picture -> Save: the editor's layer is object 2's."""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a click runs the model on 2 shared CPU cores
    press = page.tap if tap else page.click
    press("#example")
    expect_value(page, "#status textarea", r"^Loaded the example clip")
    press("#add-object")
    expect(page.locator("#editor-message")).to_contain_text("Added Object 2")
    expect(page.locator("#object input[value='2']")).to_be_checked()
    press("#click-mode input[type=checkbox]")
    expect(page.locator("#click-image img")).to_be_visible()
    page.screenshot(path=str(SHOTS / f"clicks-{name}-1-mode.png"))

    click_on_picture(page, 0.5, 0.5, tap)
    expect(page.locator("#click-status")).to_contain_text("Object 2: 1 point(s)")
    # A second click, after the first one's result arrived, reaches the handler too.
    press("#click-kind label:has-text('− point')")
    click_on_picture(page, 0.25, 0.25, tap)
    expect(page.locator("#click-status")).to_contain_text("Object 2: 2 point(s) (1 −)")
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / f"clicks-{name}-2-clicked.png"))
    if not tap:
        assert layer_stays_on_the_picture(page), "the click's layer shows outside the picture in the editor"

    press("#save-annotation")
    # Save reads the editor's layers: object 2 alone means the click's mask reached the editor as its layer.
    expect(page.locator("#editor-message")).to_contain_text(re.compile(r"^\s*Saved the annotation of frame 0 \(Object 2\)"))
    page.screenshot(path=str(SHOTS / f"clicks-{name}-3-saved.png"), full_page=True)


def test_clicks_on_a_desktop_make_the_chosen_objects_layer(app_url, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url)
    click_to_segment(page, "desktop", tap=False)
    context.close()


def test_taps_on_a_phone_make_the_chosen_objects_layer(app_url, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url)
    click_to_segment(page, "phone", tap=True)
    context.close()


# What #click-status said, in order, from the moment it is watched (the "Working" line lasts only while SAM runs).
WATCH_JS = """() => {
  window.clickStatus = [];
  const target = document.querySelector('#click-status');
  new MutationObserver(() => window.clickStatus.push(
    (target.classList.contains('working') ? 'Working ' : '') + target.innerText)).observe(target,
    {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def test_case_5_the_point_its_mask_save_and_the_object_are_on_screen_together(app_url, browser):
    """Issue 18 case 5: at 1280x800 the click picture (the point and the mask it gave), the object picker, the
    editor and Save are in view together, and the line under the tools says Working while SAM computes (on
    cb9639d the 380 px click picture pushed the editor and Save below the fold); on a phone the object picker is
    just above the click picture (it was about 1,000 px below it)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url)
    page.click("#example")
    expect_value(page, "#status textarea", r"^Loaded the example clip")
    page.click("#click-mode input[type=checkbox]")
    expect(page.locator("#click-image img")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(500)
    page.evaluate(WATCH_JS)
    box = page.locator("#click-image img").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.35)  # the red disc
    expect(page.locator("#click-status")).to_contain_text("Object 1: 1 point(s)")
    said = page.evaluate("window.clickStatus")
    assert any("Working" in text for text in said), said
    page.screenshot(path=str(SHOTS / "clicks-case-5-desktop.png"))
    for selector in ("#click-image", "#object", "#editor", "#save-annotation"):
        found = page.locator(selector).bounding_box()
        assert found["y"] >= 0 and found["y"] + found["height"] <= 800, f"{selector} out of view: {found}"
    context.close()

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.set_default_timeout(60_000)
    phone.goto(app_url)
    phone.tap("#example")
    expect_value(phone, "#status textarea", r"^Loaded the example clip")
    phone.tap("#click-mode input[type=checkbox]")
    expect(phone.locator("#click-image img")).to_be_visible()
    picker, picture = phone.locator("#object").bounding_box(), phone.locator("#click-image").bounding_box()
    assert picker["y"] < picture["y"] and picture["y"] - (picker["y"] + picker["height"]) < 400, (picker, picture)
    phone.screenshot(path=str(SHOTS / "clicks-case-5-phone.png"))
    context.close()
