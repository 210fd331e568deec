"""Issue 18's whole loop in headless Chromium, in one test: load, paint, click to segment, save, propagate, open a
suggestion, correct it, propagate again, export, then resume from the exported zip alone in a new visitor's page.

The app gets random XMem weights and a small random SAM 2 (nothing is downloaded): the masks mean nothing, the test
checks that what a person made comes back as it was. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pytest

from tests.browser_helpers import (
    DESKTOP,
    MAX_FRAMES,
    PHONE,
    K,
    choose_object,
    editor_ready,
    expect_note,
    expect_run,
    expect_status,
    export,
    exported_mask,
    paint,
    shot,
    visitor,
)
from tests.conftest import APP_MAX_FRAMES, serve_app, small_sam_config
from xmempp.model.weights import save_random_checkpoint
from xmempp.prompts import save_random_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SIZE = 240  # not the app's --size 96 here, so that the resumed size is the one chosen


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app with random XMem weights and a small random SAM 2, the example cut to 16 frames, size 96."""
    checkpoint = save_random_checkpoint(tmp_path_factory.mktemp("weights") / "random.pth", seed=1)
    sam = save_random_model(tmp_path_factory.mktemp("sam") / "sam2-random", small_sam_config(), seed=0)
    yield from serve_app(tmp_path_factory.mktemp("app"), [
        "--weights", str(checkpoint), "--sam-model", str(sam), "--device", "cpu",
        "--max-frames", str(APP_MAX_FRAMES), "--size", "96"])


def name_object(page, name: str, was: str) -> None:
    """Name the chosen object once the name box shows its name `was`, as a person reads it before typing."""
    from playwright.sync_api import expect

    box = page.locator("#object-name :is(input, textarea)")
    expect(box).to_have_value(was)
    box.fill(name)
    box.press("Enter")
    expect_note(page, f"now called {name}")


def click_on_picture(page, fx: float, fy: float) -> None:
    """A click (a tap on a phone) at a fraction of the click picture's width and height, where nothing lies over it."""
    picture = page.locator("#click-image img")
    picture.evaluate("element => element.scrollIntoView({block: 'center'})")
    box = picture.bounding_box()
    x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
    page.wait_for_function("([x, y]) => document.elementFromPoint(x, y)?.closest('#click-image') != null", arg=[x, y])
    if page.viewport_size["width"] < 640:
        page.touchscreen.tap(x, y)
    else:
        page.mouse.click(x, y)


def download_bytes(page) -> bytes:
    """The export zip's file, as a person downloads it."""
    href = page.locator("#download a[href*='xmempp-masks.zip']").first.get_attribute("href")
    return page.request.get(href if href.startswith("http") else page.url.rstrip("/") + href).body()


def masks_of(archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    return {name: exported_mask(archive, name) for name in archive.namelist() if name.startswith("Annotations/")}


@pytest.mark.parametrize("screen", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_whole_loop_comes_back_from_its_export_zip_alone(browser, app_url, tmp_path, screen):
    from playwright.sync_api import expect

    width = screen["viewport"]["width"]
    page = visitor(browser, app_url, **screen)
    shot(page, f"40-loop-loaded-{width}")
    page.locator("#size label", has_text=f"{SIZE} px").click()
    expect_run(page, rf"^Processing size {SIZE}")

    # Object 1 painted on frame 0, object 2 by a click on frame 0; both saved.
    name_object(page, "ball", "Object 1")
    paint(page, (0.3, 0.35), (0.45, 0.5))
    page.click("#save-annotation")
    expect_note(page, r"^Saved the annotation of frame 0 \(ball\)")
    choose_object(page, 2)
    name_object(page, "square", "Object 2")
    page.click("#click-mode input[type=checkbox]")
    expect(page.locator("#click-image img")).to_be_visible()
    click_on_picture(page, 0.75, 0.55)
    expect(page.locator("#click-status")).to_contain_text("square: 1 point(s)", timeout=120_000)
    page.wait_for_timeout(500)
    shot(page, f"41-loop-clicked-{width}")
    page.click("#save-annotation")
    expect_note(page, r"^Replaced the annotation of frame 0 \(ball, square\)")
    page.click("#click-mode input[type=checkbox]")  # back to the brush
    expect(page.locator("#click-image img")).to_be_hidden()

    # A run with suggestions; a suggestion opened, corrected with object 1, saved; a second run.
    page.locator("#k input[type=number]").fill(str(K))
    page.locator("#k input[type=number]").press("Enter")
    page.click("#propagate")
    expect_run(page, rf"^Propagated {MAX_FRAMES} frames.*{K} suggested frame", timeout=300_000)
    shot(page, f"42-loop-propagated-{width}")
    caption = page.locator("#suggestions .caption-label").first.inner_text()
    suggested = int(re.match(r"frame (\d+)", caption).group(1))
    page.locator("#suggestions button.thumbnail-item").first.click()
    expect_note(page, rf"^Frame {suggested} of 15: predicted mask")
    editor_ready(page)
    choose_object(page, 1)
    paint(page, (0.5, 0.2), (0.6, 0.3))
    page.click("#save-annotation")
    expect_note(page, rf"^Saved the annotation of frame {suggested} \(.*ball")
    expect(page.locator("#references button.thumbnail-item")).to_have_count(2)
    page.click("#propagate")
    expect_run(page, rf"^Propagated {MAX_FRAMES} frames", timeout=300_000)
    with export(page) as archive:
        made = masks_of(archive)
    assert {f"Annotations/frame_{i:06d}.png" for i in range(MAX_FRAMES)} <= set(made)
    zip_path = tmp_path / "xmempp-masks.zip"
    zip_path.write_bytes(download_bytes(page))
    page.context.close()

    # A new visitor uploads the zip alone: size, objects, names, references and the last run's masks as they were.
    later = visitor(browser, app_url, load=False, **screen)
    with later.expect_file_chooser() as chooser:
        later.click("#upload")
    chooser.value.set_files(str(zip_path))
    message = expect_status(later, r"^(Loaded|⚠)", timeout=180_000)
    assert message.startswith("Loaded xmempp-masks.zip") and "resumed 2 reference(s)" in message, message
    expect(later.locator("#size input[type=radio]:checked")).to_have_value(str(SIZE))
    picker = later.locator("#object")
    expect(picker.locator("input[type=radio]")).to_have_count(2)
    expect(picker).to_contain_text("ball")
    expect(picker).to_contain_text("square")
    references = later.locator("#references .caption-label")
    expect(references).to_have_count(2)
    assert sorted(int(re.search(r"\d+", c).group()) for c in references.all_inner_texts()) == [0, suggested]
    editor_ready(later)
    later.locator("#frame input[type=number]").fill("9")
    later.locator("#frame input[type=number]").press("Enter")
    expect(later.locator("#viewer")).to_contain_text("frame 9 · from the previous run")
    shot(later, f"43-loop-resumed-{width}")
    with export(later) as archive:
        back = masks_of(archive)
    assert back.keys() == made.keys()
    assert all((back[name] == made[name]).all() for name in made), "the resumed masks differ from the exported ones"
    later.context.close()
