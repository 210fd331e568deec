"""The app under a crowd: several visitors at once in headless Chromium, then two faults. Run by hand.

    python benchmarks/crowd.py [--visitors 6] [--port 7880] [--size 240] [--max-frames 0] [--skip-faults]

Starts `app.py --max-runs 1` with random weights (the masks mean nothing) on --port, then:

1. crowd: every visitor (its own browser context, so its own Gradio session) loads the example clip, paints a
   stroke on frame 0 at a place of its own, saves it, picks the processing size, presses Propagate, exports and
   downloads the zip, all at the same time. Checked: each zip's UserAnnotations/ mask holds that visitor's stroke
   and nothing outside its place (so no other visitor's), and Annotations/ has a mask for every frame. Recorded:
   what each page showed while its run waited in the queue, peak resident memory of the server (its process and
   children, sampled every 0.25 s), when the last visitor finished, and how long after every context closed the
   session folders under the app's work root were gone.
2. tab closed mid-propagation: three visitors; the first closes its context while its run is going and the
   others wait; recorded: seconds until the next run starts, and the others' results checked as above.
3. server restarted mid-session: a visitor exports, propagates again, the server is killed (SIGKILL) mid-run and
   started again; Propagate is pressed on that page (what it says is recorded), then the visitor uploads the
   example video together with its zip on the same page: its reference comes back and propagates. Also checked: the killed server's work root is removed by the new one.

Results go to --out (default artifacts/crowd/): results.json, screenshots, the server logs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xmempp.model.weights import save_random_checkpoint  # noqa: E402

EXAMPLE = ROOT / "examples" / "shapes.mp4"
BROWSER_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMER = re.compile(r"\b\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?s\b")  # Gradio's elapsed/estimated seconds
STEP_TIMEOUT_MS = 30 * 60_000  # a visitor may wait behind five others' runs on a busy 2-core machine
QUEUE_TEXT = re.compile(r"queue[^\n]{0,40}?\d+\s*/\s*\d+|position\s*\d+|\d+\s*(?:run|visitor|person|people)s?\s+"
                        r"(?:ahead|before|waiting)|waiting[^\n]{0,60}", re.IGNORECASE)


# ----- the server ---------------------------------------------------------------------------------------------
class Server:
    """`app.py` as a subprocess with its own TMPDIR (so its work root, xmempp-app-*, is found)."""

    def __init__(self, port: int, weights: Path, tmpdir: Path, log_path: Path, max_frames: int):
        self.port, self.weights, self.tmpdir, self.log_path, self.max_frames = port, weights, tmpdir, log_path, max_frames
        self.process: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{port}/"

    def start(self) -> float:
        """Start and wait until it answers; returns the seconds that took."""
        env = {**os.environ, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_SERVER_NAME": "127.0.0.1",
               "XMEMPP_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(self.tmpdir)}
        command = [sys.executable, str(ROOT / "app.py"), "--weights", str(self.weights), "--device", "cpu",
                   "--max-runs", "1"]
        if self.max_frames:
            command += ["--max-frames", str(self.max_frames)]
        log = open(self.log_path, "a")  # noqa: SIM115 (the child holds it; closed with the process)
        start = time.monotonic()
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"app.py exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return time.monotonic() - start
            except OSError:
                if time.monotonic() - start > 180:
                    raise SystemExit("app.py did not answer within 180 s") from None
                time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def work_roots(self) -> list[Path]:
        return sorted(self.tmpdir.glob("xmempp-app-*"))

    def session_folders(self) -> list[Path]:
        return [p for root in self.work_roots() for p in root.glob("session-*")]


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (each process's VmRSS; shared pages counted twice)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for member in tree:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak, self.first = pid, every_s, 0, None
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            rss = _tree_rss_bytes(self.pid)
            self.first = rss if self.first is None else self.first
            self.peak = max(self.peak, rss)
            self._done.wait(self.every_s)

    def finish(self) -> int:
        self._done.set()
        self.join()
        return self.peak


# ----- one visitor in the browser --------------------------------------------------------------------------------
@dataclass
class Visitor:
    name: str
    cell: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the picture: where its stroke goes
    page: object = None
    context: object = None
    times: dict[str, float] = field(default_factory=dict)
    waiting_texts: list[str] = field(default_factory=list)  # what the page said while the run was queued
    queue_seen: bool = False
    errors: list[str] = field(default_factory=list)
    zip_bytes: bytes | None = None
    check: dict = field(default_factory=dict)


def cells(count: int) -> list[tuple[float, float, float, float]]:
    columns = 3
    rows = math.ceil(count / columns)
    return [((i % columns) / columns, (i // columns) / rows, (i % columns + 1) / columns, (i // columns + 1) / rows)
            for i in range(count)]


async def status_value(page) -> str:
    return await page.locator("#status textarea").input_value()


async def wait_status(page, pattern: str, timeout_ms: float = STEP_TIMEOUT_MS) -> str:
    from playwright.async_api import expect

    await expect(page.locator("#status textarea")).to_have_value(re.compile(pattern), timeout=timeout_ms)
    return await status_value(page)


async def editor_ready(page) -> None:
    from playwright.async_api import expect

    await expect(page.locator("#editor > [data-testid=status-tracker]")).to_have_class(re.compile("hide"),
                                                                                     timeout=STEP_TIMEOUT_MS)
    await page.wait_for_timeout(300)


async def open_app(browser, url: str, name: str, visitor: Visitor) -> None:
    visitor.context = await browser.new_context(viewport={"width": 1280, "height": 800})
    visitor.page = await visitor.context.new_page()
    visitor.page.set_default_timeout(STEP_TIMEOUT_MS)
    await visitor.page.goto(url)


async def load_example(visitor: Visitor) -> tuple[int, int]:
    """Press Example clip; returns the picture's (width, height) from the status."""
    page = visitor.page
    await page.click("#example")
    status = await wait_status(page, r"^Loaded the example clip")
    await editor_ready(page)
    width, height = map(int, re.search(r"frames of (\d+)x(\d+)", status).groups())
    return width, height


async def paint_cell(visitor: Visitor, picture: tuple[int, int]) -> None:
    """A horizontal stroke across the middle of the visitor's cell (the picture sits centred in the canvas)."""
    page = visitor.page
    canvas = page.locator("#editor .pixi-target canvas")
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    zoom_text = await page.locator("#editor").get_by_text(re.compile(r"^\d+%$")).first.inner_text()
    zoom = int(zoom_text.rstrip("%")) / 100
    width, height = picture[0] * zoom, picture[1] * zoom
    left, top = box["x"] + (box["width"] - width) / 2, box["y"] + (box["height"] - height) / 2
    x0, y0, x1, y1 = visitor.cell
    y = top + height * (y0 + y1) / 2
    xs = [left + width * (x0 + (x1 - x0) * f) for f in (0.35, 0.45, 0.55, 0.65)]
    await page.mouse.move(box["x"] + 4, box["y"] + box["height"] / 2)  # the margin first, then the picture
    await page.mouse.move(xs[0], y)
    await page.mouse.down()
    for x in xs[1:]:
        await page.mouse.move(x, y)
    await page.mouse.up()


async def annotate(visitor: Visitor, picture: tuple[int, int]) -> None:
    await paint_cell(visitor, picture)
    await visitor.page.click("#save-annotation")
    await wait_status(visitor.page, r"^Saved the annotation of frame 0 \(objects 1\)")


async def choose_size(visitor: Visitor, size: int) -> None:
    await visitor.page.locator("#size label", has_text=str(size)).click()
    await wait_status(visitor.page, rf"^Processing size {size} px")


VISIBLE_TEXTS = """(root) => {
    // Texts a person can see: Gradio keeps hidden loading overlays (with their queue text) in the page.
    const texts = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const element = node.parentElement;
        const box = element.getBoundingClientRect();
        if (node.textContent.trim() && box.width > 0 && box.height > 0
                && element.checkVisibility({opacityProperty: true, visibilityProperty: true})) {
            texts.push(node.textContent.trim());
        }
    }
    return texts.join(" ");
}"""


async def page_texts(page) -> tuple[str, str, str]:
    """(status, the visible text of the Propagate area's progress, any visible queue text on the page)."""
    status = await status_value(page)
    visible = await page.locator("body").evaluate(VISIBLE_TEXTS)
    progress = await page.locator("#progress").evaluate(VISIBLE_TEXTS)
    queue = " | ".join(dict.fromkeys(m.group(0).strip() for m in QUEUE_TEXT.finditer(visible)))
    return status, progress, queue


async def propagate(visitor: Visitor, out: Path, shot_name: str | None = None, start_clock: float = 0.0) -> str:
    """Press Propagate and watch the page until the run ends; records what it showed while waiting."""
    page = visitor.page
    visitor.times["propagate_pressed"] = time.monotonic() - start_clock
    await page.click("#propagate")
    shot_taken = False
    while True:
        try:
            status, progress, queue = await page_texts(page)
        except Exception as error:  # the context was closed by a fault test
            visitor.errors.append(f"watching stopped: {type(error).__name__}")
            return ""
        started = status.startswith("Propagating") or "frames/s" in progress
        if "propagate_started" not in visitor.times and not started:
            seen = TIMER.sub("…s", f"status: {status!r}; progress: {progress!r}; queue text: {queue!r}")
            if seen not in visitor.waiting_texts:
                visitor.waiting_texts.append(seen)
            visitor.queue_seen = visitor.queue_seen or bool(queue)
            waited = time.monotonic() - start_clock - visitor.times["propagate_pressed"]
            if shot_name and not shot_taken and waited > 2:
                await page.screenshot(path=str(out / f"{shot_name}.png"))
                shot_taken = True
        if started and "propagate_started" not in visitor.times:
            visitor.times["propagate_started"] = time.monotonic() - start_clock
        running = time.monotonic() - start_clock - visitor.times.get("propagate_started", math.inf)
        if shot_name and running > 3 and not visitor.times.get("running_shot"):
            await page.screenshot(path=str(out / f"{shot_name.replace('waiting', 'running')}.png"))
            visitor.times["running_shot"] = time.monotonic() - start_clock
        if status.startswith("Propagated") or status.startswith("Stopped") or status.startswith("⚠"):
            visitor.times["propagate_done"] = time.monotonic() - start_clock
            return status
        await asyncio.sleep(0.5)


async def export(visitor: Visitor, start_clock: float = 0.0) -> bytes:
    page = visitor.page
    await page.click("#export")
    await wait_status(page, r"^Exported masks for")
    link = page.locator("#download a[href*='xmempp-masks.zip']").first
    href = await link.get_attribute("href")
    response = await page.request.get(href if href.startswith("http") else page.url.rstrip("/") + href)
    visitor.zip_bytes = await response.body()
    visitor.times["exported"] = time.monotonic() - start_clock
    return visitor.zip_bytes


def check_zip(data: bytes, cell: tuple[float, float, float, float], frames: int) -> dict:
    """The zip's own stroke: UserAnnotations/ holds one mask, inside the visitor's cell only; every frame masked."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        users = [n for n in names if n.startswith("UserAnnotations/")]
        results = [n for n in names if n.startswith("Annotations/")]
        user = np.asarray(Image.open(io.BytesIO(archive.read(users[0])))) if len(users) == 1 else None
        first = np.asarray(Image.open(io.BytesIO(archive.read(users[0].replace("User", ""))))) if users else None
    report = {"user_masks": len(users), "result_masks": len(results), "frames": frames}
    if user is None:
        return {**report, "ok": False}
    height, width = user.shape
    x0, y0, x1, y1 = (round(cell[0] * width), round(cell[1] * height), round(cell[2] * width), round(cell[3] * height))
    inside = int((user[y0:y1, x0:x1] > 0).sum())
    outside = int((user > 0).sum()) - inside
    report.update(stroke_pixels=inside, pixels_outside_own_cell=outside,
                  first_result_is_the_annotation=bool(first is not None and np.array_equal(first, user)))
    report["ok"] = bool(inside > 0 and outside == 0 and len(results) == frames and report["first_result_is_the_annotation"])
    return report


def frames_in(status: str) -> int:
    return int(re.search(r"(\d+) frames", status).group(1))


# ----- the three scenarios ---------------------------------------------------------------------------------------
async def crowd(browser, server: Server, args, out: Path) -> dict:
    visitors = [Visitor(f"visitor-{i + 1}", cell) for i, cell in enumerate(cells(args.visitors))]
    sampler = MemorySampler(server.process.pid)
    sampler.start()
    clock = time.monotonic()
    frame_counts: dict[str, int] = {}

    async def visit(visitor: Visitor) -> None:
        await open_app(browser, server.url, visitor.name, visitor)
        picture = await load_example(visitor)
        frame_counts[visitor.name] = frames_in(await status_value(visitor.page))
        visitor.times["loaded"] = time.monotonic() - clock
        await annotate(visitor, picture)
        await choose_size(visitor, args.size)
        visitor.times["annotated"] = time.monotonic() - clock
        status = await propagate(visitor, out, "crowd-waiting-" + visitor.name, clock)
        if not status.startswith("Propagated"):
            visitor.errors.append(f"propagation ended with: {status}")
            return
        data = await export(visitor, clock)
        visitor.check = check_zip(data, visitor.cell, frame_counts[visitor.name])

    results = await asyncio.gather(*(visit(v) for v in visitors),
                                   return_exceptions=True)
    finished = time.monotonic() - clock
    for visitor, result in zip(visitors, results, strict=True):
        if isinstance(result, BaseException):
            visitor.errors.append(f"{type(result).__name__}: {result}")
            await visitor.page.screenshot(path=str(out / f"crowd-error-{visitor.name}.png"))
    peak = sampler.finish()
    folders_before = len(server.session_folders())
    for visitor in visitors:
        await visitor.context.close()
    closed = time.monotonic()
    while server.session_folders() and time.monotonic() - closed < 90:
        await asyncio.sleep(0.5)
    left = server.session_folders()
    await asyncio.sleep(5)
    rss_after_close = _tree_rss_bytes(server.process.pid)
    return {
        "visitors": [{"name": v.name, "times_s": {k: round(t, 1) for k, t in v.times.items()},
                      "queue_position_seen": v.queue_seen, "while_waiting": v.waiting_texts, "zip": v.check,
                      "errors": v.errors} for v in visitors],
        "all_own_results": all(v.check.get("ok") for v in visitors),
        "pairwise_disjoint_strokes": _disjoint(visitors),
        "last_finished_s": round(finished, 1),
        "server_rss_start_mb": round((sampler.first or 0) / 2**20), "server_rss_peak_mb": round(peak / 2**20),
        "server_rss_after_all_closed_mb": round(rss_after_close / 2**20),
        "session_folders_before_close": folders_before,
        "session_folders_gone_after_s": None if left else round(time.monotonic() - closed, 1),
        "session_folders_left": [str(p) for p in left],
    }


def _disjoint(visitors: list[Visitor]) -> bool:
    masks = []
    for visitor in visitors:
        if visitor.zip_bytes is None:
            return False
        with zipfile.ZipFile(io.BytesIO(visitor.zip_bytes)) as archive:
            name = next(n for n in archive.namelist() if n.startswith("UserAnnotations/"))
            masks.append(np.asarray(Image.open(io.BytesIO(archive.read(name)))) > 0)
    return all(not (a & b).any() for i, a in enumerate(masks) for b in masks[i + 1:])


async def tab_closed_mid_run(browser, server: Server, args, out: Path) -> dict:
    """The first visitor closes its tab while its run goes; the two others wait behind it."""
    visitors = [Visitor(f"closer-{i + 1}", cell) for i, cell in enumerate(cells(3))]
    clock = time.monotonic()
    for visitor in visitors:
        await open_app(browser, server.url, visitor.name, visitor)
        picture = await load_example(visitor)
        frames = frames_in(await status_value(visitor.page))
        await annotate(visitor, picture)
        await choose_size(visitor, args.size)
    first, others = visitors[0], visitors[1:]
    await first.page.click("#propagate")
    await wait_status(first.page, r"^Propagating: frame [1-9]")
    watchers = [asyncio.create_task(propagate(v, out, None, clock)) for v in others]
    await asyncio.sleep(3)  # both are queued behind the first run
    queued = {v.name: "propagate_started" not in v.times for v in others}
    await first.page.screenshot(path=str(out / "closer-before-close.png"))
    closed_at = time.monotonic() - clock
    await first.context.close()
    statuses = await asyncio.gather(*watchers)
    results = []
    for visitor, status in zip(others, statuses, strict=True):
        if status.startswith("Propagated"):
            visitor.check = check_zip(await export(visitor, clock), visitor.cell, frames)
        results.append({"name": visitor.name, "status": status, "times_s": {k: round(t, 1) for k, t in visitor.times.items()},
                        "zip": visitor.check, "errors": visitor.errors})
    starts = [v.times["propagate_started"] for v in others if "propagate_started" in v.times]
    closer_folder_gone = len(server.session_folders()) == len(others)
    for visitor in others:
        await visitor.context.close()
    return {"queued_before_close": queued, "closed_at_s": round(closed_at, 1),
            "next_run_started_after_close_s": round(min(starts) - closed_at, 1) if starts else None,
            "closer_session_folder_gone": closer_folder_gone,
            "others": results, "others_ok": all(v.check.get("ok") for v in others),
            "log_after_close": _log_tail(server.log_path, 15)}


async def server_restart(browser, server: Server, args, out: Path) -> dict:
    """Export, propagate again, kill the server mid-run, start it again, resume from the video and the zip."""
    visitor = Visitor("restart", cells(1)[0])
    await open_app(browser, server.url, visitor.name, visitor)
    picture = await load_example(visitor)
    frames = frames_in(await status_value(visitor.page))
    await annotate(visitor, picture)
    await choose_size(visitor, args.size)
    await propagate(visitor, out)
    exported = await export(visitor)
    zip_path = out / "restart-export.zip"
    zip_path.write_bytes(exported)
    before = check_zip(exported, visitor.cell, frames)
    await visitor.page.click("#propagate")
    await wait_status(visitor.page, r"^Propagating: frame [1-9]")
    old_roots = server.work_roots()
    server.kill()
    killed_left = [str(p) for p in server.work_roots()]
    await asyncio.sleep(3)
    shown_after_kill = await page_texts(visitor.page)
    await visitor.page.screenshot(path=str(out / "restart-after-kill.png"))
    restart_s = server.start()
    stale_removed = not any(root.exists() for root in old_roots)
    await asyncio.sleep(5)  # the page reconnects on its own; its session's state is gone with the old server
    await visitor.page.click("#propagate")
    await asyncio.sleep(3)
    propagate_without_reload = await page_texts(visitor.page)
    await visitor.page.screenshot(path=str(out / "restart-propagate-without-reload.png"))
    # as the message says: upload the video with the zip, on the same page (no reload)
    async with visitor.page.expect_file_chooser() as chooser:
        await visitor.page.click("#upload")
    await (await chooser.value).set_files([str(EXAMPLE), str(zip_path)])
    resumed = await wait_status(visitor.page, r"^Loaded", 10 * 60_000)
    await editor_ready(visitor.page)
    await asyncio.sleep(2)
    await visitor.page.screenshot(path=str(out / "restart-resumed.png"))
    await choose_size(visitor, args.size)
    status = await propagate(visitor, out)
    after = check_zip(await export(visitor), visitor.cell, frames) if status.startswith("Propagated") else {}
    await visitor.context.close()
    return {"first_export": before, "left_by_the_kill": killed_left, "page_after_kill": shown_after_kill,
            "restart_s": round(restart_s, 1), "stale_work_root_removed_on_restart": stale_removed,
            "propagate_pressed_after_restart_without_reload": propagate_without_reload,
            "status_after_upload": resumed, "propagation_after_resume": status, "export_after_resume": after}


def _log_tail(path: Path, lines: int) -> list[str]:
    return path.read_text(errors="replace").splitlines()[-lines:]


async def main_async(args, out: Path, weights: Path, tmpdir: Path) -> dict:
    from playwright.async_api import async_playwright

    report: dict = {"visitors": args.visitors, "size": args.size, "max_frames": args.max_frames or "whole example",
                    "load_average_at_start": os.getloadavg()}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=args.chromium, headless=True, args=BROWSER_ARGS)
        server = Server(args.port, weights, tmpdir, out / "server.log", args.max_frames)
        try:
            report["server_start_s"] = round(server.start(), 1)
            if not args.skip_crowd:
                report["crowd"] = await crowd(browser, server, args, out)
                _save(out, report)
            if not args.skip_faults:
                report["tab_closed_mid_run"] = await tab_closed_mid_run(browser, server, args, out)
                _save(out, report)
                report["server_restart"] = await server_restart(browser, server, args, out)
        finally:
            server.stop()
            await browser.close()
        report["work_roots_left_after_stop"] = [str(p) for p in server.work_roots()]
    report["load_average_at_end"] = os.getloadavg()
    return report


def _save(out: Path, report: dict) -> None:
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=6)
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--size", type=int, default=240, help="processing size every visitor picks")
    parser.add_argument("--max-frames", type=int, default=0, help="cut the example to this many frames (0: all 48)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "crowd")
    parser.add_argument("--skip-crowd", action="store_true")
    parser.add_argument("--skip-faults", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server.log").write_text("")
    with tempfile.TemporaryDirectory(prefix="xmempp-crowd-") as scratch:
        weights = save_random_checkpoint(Path(scratch) / "random.pth", seed=1)
        tmpdir = Path(scratch) / "tmp"
        tmpdir.mkdir()
        report = asyncio.run(main_async(args, args.out, weights, tmpdir))
    _save(args.out, report)
    print(json.dumps(report, indent=2, default=str))  # the result of a script run by hand


if __name__ == "__main__":
    main()
