"""Seconds from pressing Propagate in the app to the first frames on screen, in headless Chromium.

    python benchmarks/app_first_frame.py [--size 480] [--frames 6] [--chromium /usr/bin/chromium] [--no-browser]

Starts `app.py` with random weights on a generated 854x480 clip (uploaded as an .mp4), paints frame 0, saves
it, presses Propagate and reads the status line: "Propagating: frame 0" is the first frame shown (the
annotated one), "Propagating: frame 1" the first the model predicted. Times include the browser and Gradio.
With --no-browser, the app's propagate handler is called directly instead (no browser or Gradio taking CPU).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.propagation import make_clip  # noqa: E402
from tests.browser_helpers import editor_ready, paint  # noqa: E402
from tests.conftest import BROWSER_ARGS, free_port  # noqa: E402


def write_video(frames_dir: Path, path: Path) -> None:
    import imageio.v3 as iio
    import numpy as np
    from PIL import Image

    frames = [np.asarray(Image.open(p)) for p in sorted(frames_dir.glob("*.jpg"))]
    iio.imwrite(path, np.stack(frames), fps=12, plugin="FFMPEG", codec="libx264", quality=9, macro_block_size=1)


def handler_times(clip: Path, video: Path, weights: Path, size: int) -> tuple[float, float]:
    """First frame and first predicted frame from the app's propagate handler, without a browser."""
    import numpy as np
    from PIL import Image

    from demo.handlers import Handlers
    from demo.layers import ids_to_layer
    from demo.media import Limits
    from demo.state import AppSettings
    from xmempp.model.weights import load_network

    settings = AppSettings(network=load_network(weights, "cpu"), limits=Limits(), work_root=clip / "work",
                           example=video, size=size)
    handlers = Handlers(settings)
    state = handlers.load_example(None)["state"]
    mask = np.asarray(Image.open(clip / "Annotations" / "frame_000000.png"))
    layer = ids_to_layer(mask)
    layer[..., 3] = np.where(mask > 0, 255, 0)
    handlers.save(state, 0, {"background": np.zeros((*mask.shape, 4), np.uint8), "layers": [layer], "composite": None})
    start = time.perf_counter()
    first = first_propagated = None
    for outputs in handlers.propagate(state, 3):
        now = time.perf_counter() - start
        label = outputs["viewer"]["label"] if "viewer" in outputs else ""
        if first is None and label.startswith("Result · frame 0 (propagating)"):
            first = now
        if first_propagated is None and re.match(r"Result · frame [1-9]\d* \(propagating\)", label):
            first_propagated = now
    return first, first_propagated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=480, help="processing size (short side)")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--no-browser", action="store_true", help="call the app's handler directly")
    args = parser.parse_args()

    from playwright.sync_api import expect, sync_playwright

    from xmempp.model.weights import save_random_checkpoint

    with tempfile.TemporaryDirectory(prefix="xmempp-app-bench-") as scratch:
        scratch = Path(scratch)
        make_clip(scratch / "clip", args.frames, 1)
        video = scratch / "clip.mp4"
        write_video(scratch / "clip" / "JPEGImages", video)
        weights = save_random_checkpoint(scratch / "random.pth", seed=1)
        if args.no_browser:
            first, first_propagated = handler_times(scratch / "clip", video, weights, args.size)
            print(f"app handler, size {args.size}: first frame {first:.2f} s, first propagated frame "
                  f"{first_propagated:.2f} s")
            return
        port = free_port()
        env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
               "XMEMPP_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
        app = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--weights", str(weights), "--device", "cpu",
                                "--size", str(args.size)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(url, timeout=2).close()
                    break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, headless=True, args=BROWSER_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(120_000)
                page.goto(url)
                status = page.locator("#status textarea")
                page.locator("#upload input[type=file], input[type=file]").first.set_input_files(str(video))
                expect(status).to_have_value(re.compile(r"^Loaded"))
                editor_ready(page)
                paint(page, (0.3, 0.35), (0.45, 0.5))
                page.click("#save-annotation")
                expect(status).to_have_value(re.compile(r"^Saved the annotation of frame 0"))
                start = time.perf_counter()
                page.click("#propagate")
                expect(status).to_have_value(re.compile(r"Propagating: frame 0"), timeout=120_000)
                first = time.perf_counter() - start
                expect(status).to_have_value(re.compile(r"Propagating: frame [1-9]"), timeout=120_000)
                first_propagated = time.perf_counter() - start
                expect(status).to_have_value(re.compile(r"^Propagated"), timeout=600_000)
                (ROOT / "artifacts").mkdir(exist_ok=True)
                page.screenshot(path=str(ROOT / "artifacts" / "app-first-frame.png"))
                browser.close()
        finally:
            app.terminate()
            app.wait(timeout=20)
    print(f"app, size {args.size}: first frame on screen {first:.2f} s, first propagated frame {first_propagated:.2f} s")


if __name__ == "__main__":
    main()
