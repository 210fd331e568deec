"""Entry point of the XMem++ Gradio app (a Hugging Face Space runs `python app.py`): parse flags, load, launch."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

from demo.media import Limits
from demo.state import AppSettings
from demo.ui import build_demo, launch_options
from xmempp.errors import XMemPPError
from xmempp.model.weights import ensure_weights, find_weights, load_network, missing_weights_message

log = logging.getLogger("xmempp.app")
ROOT = Path(__file__).resolve().parent
EXAMPLE = ROOT / "examples" / "shapes.mp4"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", help="XMem checkpoint (default: $XMEMPP_WEIGHTS, then weights/XMem.pth, "
                                          "downloaded when absent unless XMEMPP_OFFLINE=1)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: CUDA when present)")
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument("--max-frames", type=int, default=300, help="longer videos are cut to this many frames")
    parser.add_argument("--max-side", type=int, default=1280, help="larger frames are downscaled to this long side")
    parser.add_argument("--max-upload-mb", type=float, default=200, help="larger uploads are refused")
    parser.add_argument("--size", type=int, default=480,
                        help="default processing size, short side in pixels (480 is XMem++'s; 360/240 are faster)")
    parser.add_argument("--max-runs", type=int, default=1, help="propagations running at once over all users")
    args = parser.parse_args(argv)
    for name in ("max_frames", "max_side", "max_upload_mb", "max_runs"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.size < 16:
        parser.error("--size must be at least 16")
    return args


def load_shared_network(weights: str | None, device: str | None) -> tuple[object | None, str]:
    """The network every session shares, or None and the message that says why there is none."""
    path = find_weights(weights)
    if path is None and os.environ.get("XMEMPP_OFFLINE") != "1":
        try:
            path = ensure_weights()
        except XMemPPError as error:
            log.warning("%s", error)
    if path is None:
        return None, missing_weights_message()
    log.info("loading weights from %s", path)
    return load_network(path, device), ""


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        network, message = load_shared_network(args.weights, args.device)
    except (XMemPPError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    work_root = Path(tempfile.mkdtemp(prefix="xmempp-app-"))
    atexit.register(shutil.rmtree, work_root, ignore_errors=True)
    settings = AppSettings(network=network, weights_message=message, work_root=work_root, example=EXAMPLE,
                           limits=Limits(args.max_frames, args.max_side, args.max_upload_mb), size=args.size,
                           max_runs=args.max_runs)
    blocks = build_demo(settings)
    blocks.queue(default_concurrency_limit=4)
    blocks.launch(share=args.share, max_file_size=f"{args.max_upload_mb}mb", **launch_options(settings))


if __name__ == "__main__":
    main()
