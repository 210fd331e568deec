"""Runs in headless Chromium against `python app.py` (random weights: the masks mean nothing): the queue, Stop,
the viewer and timeline during and after a run, and the whole loop from load to export."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser_helpers import (
    DESKTOP,
    MAX_FRAMES,
    PHONE,
    K,
    annotate_frame_0,
    choose_object,
    download_zip,
    editor_ready,
    expect_note,
    expect_run,
    expect_status,
    export,
    exported_mask,
    open_frame_by_typing,
    paint,
    shot,
    visitor,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(browser, app_url):
    page = visitor(browser, app_url)
    yield page
    page.context.close()


def test_a_queued_run_shows_its_place_in_the_queue_within_2_seconds(browser, app_url):
    """Issue 10's problem 4: a visitor pressing Propagate while another visitor's run held the model saw nothing for
    many seconds. Now the run line says how many runs are ahead and about how long the wait is, within 2 s."""
    from playwright.sync_api import expect

    first, second = visitor(browser, app_url), visitor(browser, app_url)
    annotate_frame_0(first)
    annotate_frame_0(second)
    # Before pressing, each size says how long this video takes at it here (the app timed itself at start-up).
    expect(first.locator("#size")).to_contain_text(re.compile(r"480 px · about \d+ (s|min)"), timeout=60_000)
    expect(first.locator("#size")).to_contain_text("measured on this machine")
    first.locator("#size label", has_text="480").click()  # a slow run (the clip at 720x480) holds the model
    expect_run(first, r"^Processing size 480")
    first.click("#propagate")
    expect_run(first, r"\b[1-9] / 16 frames")
    asked = time.monotonic()
    second.click("#propagate")
    expect_run(second, r"1 run\(s\) ahead of yours.*about \d+ (s|min)", timeout=5_000)
    assert time.monotonic() - asked < 2.5
    assert "Waiting" not in second.locator("#status textarea").input_value()  # the wait shows on the run line only
    shot(second, "13-queued")
    first.click("#stop")
    expect_run(first, r"^Stopped after \d+ of 16 frames")
    expect_run(second, r"^Propagated 16 frames")
    first.context.close()
    second.context.close()


@pytest.mark.parametrize("screen", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_stop_keeps_the_previous_runs_masks_for_the_frames_not_reached(browser, app_url, screen):
    """Issue 10's problem 5 and issue 18's wording (case 8): stopping a re-run keeps the earlier run's masks for the
    frames not reached, exported as such; the editor calls them a "mask kept from the previous run", Export counts
    them apart, and no "Next: Propagate" is left over from before the runs."""
    from playwright.sync_api import expect

    page = visitor(browser, app_url, **screen)
    annotate_frame_0(page)
    assert "Next: Propagate" in expect_status(page, "1 reference")
    page.click("#propagate")
    expect_run(page, r"^Propagated 16 frames")
    assert "Next: Propagate" not in expect_status(page, "masks on 16 of 16 frames")
    with export(page) as archive:
        earlier = exported_mask(archive, "Annotations/frame_000015.png")
    page.locator("#size label", has_text="480").click()  # a slow re-run, stopped long before frame 15
    expect_run(page, r"^Processing size 480")
    page.click("#propagate")
    expect_run(page, r"\b[1-9] / 16 frames")  # not 16
    page.click("#stop")
    line = expect_run(page, r"^Stopped after \d+ of 16 frames")
    assert "keep the previous run's masks" in line, line
    with export(page) as archive:
        names = set(archive.namelist())
        assert {f"Annotations/frame_{i:06d}.png" for i in range(16)} <= names, sorted(names)
        assert (exported_mask(archive, "Annotations/frame_000015.png") == earlier).all()
    exported = page.locator("#export-message").inner_text()
    assert re.search(r"Exported masks of 16 of 16 frames \(\d+ from the latest run, \d+ kept from the previous run\)",
                     exported), exported
    open_frame_by_typing(page, 15)
    expect(page.locator("#viewer")).to_contain_text("Result · frame 15 · from the previous run")
    note = expect_note(page, "Frame 15 of 15: mask kept from the previous run")
    assert "previous run mask" not in note
    shot(page, f"14-stopped-rerun-{screen['viewport']['width']}")
    page.context.close()


def test_the_whole_loop_in_a_browser(page):
    """Load, paint, save, propagate, correct a suggestion with a second object, propagate again, export; the viewer
    follows the editor's frame."""
    from playwright.sync_api import expect

    status = expect_status(page, r"^Loaded the example clip")
    assert f"{MAX_FRAMES} frames" in status and "cut to its first" in status
    shot(page, "01-example-loaded")
    paint(page, (0.3, 0.35), (0.45, 0.5))
    page.click("#save-annotation")
    expect_note(page, r"^Saved the annotation of frame 0 \(Object 1\)")
    expect(page.locator("#references button.thumbnail-item")).to_have_count(1)
    shot(page, "03-saved-frame-0")

    page.locator("#k input[type=number]").fill(str(K))
    page.locator("#k input[type=number]").press("Enter")
    page.click("#propagate")
    expect_run(page, rf"^Propagated {MAX_FRAMES} frames.*{K} suggested frame")
    expect_status(page, rf"masks on {MAX_FRAMES} of {MAX_FRAMES} frames\. {K} suggested")
    suggestions = page.locator("#suggestions button.thumbnail-item")
    expect(suggestions).to_have_count(K)
    expect(page.locator("#result-video video")).to_have_count(1)
    expect(page.locator("#viewer")).to_contain_text("frame 0")
    shot(page, "04-propagated")

    caption = page.locator("#suggestions .caption-label").first.inner_text()
    suggested = int(re.match(r"frame (\d+)", caption).group(1))
    suggestions.first.click()
    expect_note(page, rf"^Frame {suggested} of 15: predicted mask")
    expect(page.locator("#frame input[type=number]")).to_have_value(str(suggested))
    expect(page.locator("#viewer")).to_contain_text(f"frame {suggested}")
    editor_ready(page)
    choose_object(page, 2)
    paint(page, (0.55, 0.6), (0.65, 0.7))
    page.click("#save-annotation")
    expect_note(page, rf"^Saved the annotation of frame {suggested} \(.*Object 2\)")
    expect(page.locator("#references button.thumbnail-item")).to_have_count(2)
    page.click("#propagate")
    expect_run(page, rf"^Propagated {MAX_FRAMES} frames")
    expect(page.locator("#viewer")).to_contain_text(f"frame {suggested}")  # still the editor's frame
    with export(page) as archive:
        names = set(archive.namelist())
    assert {f"Annotations/frame_{i:06d}.png" for i in range(MAX_FRAMES)} <= names
    assert {"UserAnnotations/frame_000000.png", f"UserAnnotations/frame_{suggested:06d}.png"} <= names
    assert "overlay.mp4" in names
    page.locator("#download").scroll_into_view_if_needed()
    shot(page, "08-exported")
    with download_zip(page) as archive:
        assert "objects.csv" in archive.namelist()
