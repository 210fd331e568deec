"""Command line: `python -m xmempp run | suggest | download-weights`.

Exit codes: 0 success, 1 a problem with the input or weights (the message says which), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from xmempp.errors import XMemPPError


def _frame_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame indices like 0,20 — got {text!r}") from None


def _size(text: str) -> int | None:
    if text.lower() in ("none", "original", "0"):
        return None
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xmempp", description="XMem++ video segmentation from a few "
                                     "annotated frames.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--images", required=True, type=Path, help="folder of frames, or a video file")
        sub.add_argument("--masks", required=True, type=Path,
                         help="folder of annotation PNGs named like the frames (frame_%%06d.png for a video file)")
        sub.add_argument("--weights", type=Path, help="XMem.pth (default: $XMEMPP_WEIGHTS, then weights/XMem.pth)")
        sub.add_argument("--device", help="cpu, cuda, cuda:1... (default: CUDA when present)")
        sub.add_argument("--size", type=_size, default=480,
                         help="short side the frames are processed at (default 480; 'original' keeps the size)")
        sub.add_argument("--quiet", action="store_true", help="no progress bars")

    run = commands.add_parser("run", help="propagate annotations to every frame")
    add_common(run)
    run.add_argument("--output", required=True, type=Path, help="writes OUTPUT/masks/*.png and OUTPUT/overlay/*.jpg")
    run.add_argument("--frames", type=_frame_list, default=[0], help="annotated frames, 0-based (default: 0)")
    run.add_argument("--iou", action="store_true", help="report IoU against masks in --masks for other frames")
    run.add_argument("--no-overlay", action="store_true", help="skip the overlay previews")

    suggest = commands.add_parser("suggest", help="the frames to annotate next")
    add_common(suggest)
    suggest.add_argument("--output", type=Path,
                         help="folder written by `run` (masks and keys are reused); without it the video is propagated")
    suggest.add_argument("--frames", type=_frame_list, default=[0], help="frames already annotated (default: 0)")
    suggest.add_argument("-k", type=int, default=5, help="how many frames to suggest (default 5)")
    suggest.add_argument("--alpha", type=float, default=0.5, help="mask weight in the comparison, 0..1 (default 0.5)")
    suggest.add_argument("--min-mask-percent", type=float, default=0.25,
                         help="never suggest frames whose mask covers less of the frame (default 0.25)")

    download = commands.add_parser("download-weights", help="download the official XMem.pth into weights/")
    download.add_argument("--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    progress = not args.quiet
    try:
        if args.command == "download-weights":
            from xmempp.model.weights import ensure_weights

            print(ensure_weights(progress=progress))
        elif args.command == "run":
            from xmempp.api import run_on_video
            from xmempp.uncertainty import UNSURE_BELOW

            stats = run_on_video(args.images, args.masks, args.output, frames_with_masks=args.frames,
                                 compute_iou=args.iou, print_progress=progress, weights=args.weights,
                                 device=args.device, size=args.size, save_overlay=not args.no_overlay)
            print(f"wrote {len(stats)} masks to {args.output / 'masks'}")
            unsure = stats[~stats.mask_provided].nlargest(3, "unsure")
            if len(unsure):
                print("most unsure frames (share of an object's pixels below "
                      f"{UNSURE_BELOW:.0%} confidence): " + ", ".join(f"{row.frame} {row.unsure:.2f}"
                                                                    for row in unsure.itertuples()))
            if args.iou:
                scored = stats[stats.iou >= 0]
                if len(scored):
                    print(f"mean IoU over {len(scored)} frames: {scored.iou.mean():.4f}")
        else:
            from xmempp.api import select_k_next_best_annotation_candidates

            picks = select_k_next_best_annotation_candidates(
                args.images, args.masks, args.output, k=args.k, previously_chosen_candidates=args.frames,
                use_previously_predicted_masks=args.output is not None, alpha=args.alpha,
                min_mask_presence_percent=args.min_mask_percent, weights=args.weights, device=args.device,
                print_progress=progress, size=args.size)
            if not picks:
                print(f"no frame to suggest: every frame not yet annotated has a predicted mask covering less than "
                      f"{args.min_mask_percent}% of the frame (see --min-mask-percent)", file=sys.stderr)
            print(",".join(str(i) for i in picks))
    except (XMemPPError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: masks written so far are kept", file=sys.stderr)
        return 130
    except Exception as error:  # a bug, not bad input: say so without a traceback, keep it in the log
        logging.getLogger("xmempp").debug("unexpected failure", exc_info=True)
        print(f"error: unexpected internal failure ({type(error).__name__}); set XMEMPP_DEBUG=1 for details "
              "and report it", file=sys.stderr)
        if os.environ.get("XMEMPP_DEBUG") == "1":
            raise
        return 1
    return 0
