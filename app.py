"""Entry point of the XMem++ Gradio app (a Hugging Face Space runs `python app.py`): parse flags, load, launch."""

from __future__ import annotations

import argparse
import errno
import importlib.util
import logging
import os
import signal
from pathlib import Path

import spaces  # noqa: F401  (first: on a ZeroGPU Space it must patch torch before torch touches CUDA)

from demo.clicks import load_prompt_model
from demo.gpu import DeviceWork, on_zero_gpu
from demo.mcp import serve_mcp_tools
from demo.media import Limits
from demo.run_queue import RunQueue
from demo.speed import PrecisionChoice
from demo.state import AppSettings
from demo.ui import build_demo, launch_options
from demo.work_root import (  # noqa: F401 (hold_for_life and remove_stale_work_roots: the app's, for its tests)
    WorkRoot,
    guard_gradios_uploads,
    hold_for_life,
    make_work_root,
    remove_stale_work_roots,
    use_upload_folder,
)
from xmempp.errors import XMemPPError, file_system_problem
from xmempp.model.weights import WEIGHTS_URL, ensure_weights, find_weights, load_network, missing_weights_message
from xmempp.online import reachable
from xmempp.precision import PRECISIONS
from xmempp.prompts import DEFAULT_SAM_MODEL

try:
    import fcntl
except ImportError:  # Windows: a work root's server is told by its pid alone
    fcntl = None

log = logging.getLogger("xmempp.app")
ROOT = Path(__file__).resolve().parent
EXAMPLE = ROOT / "examples" / "shapes.mp4"
WORK_ROOT_PREFIX = "xmempp-app-"  # then the server's process id: xmempp-app-<pid>-<random>


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", help="XMem checkpoint (default: $XMEMPP_WEIGHTS, then weights/XMem.pth, "
                                          "downloaded when absent unless XMEMPP_OFFLINE=1)")
    parser.add_argument("--sam-model", help="SAM 2.1 model for click to segment: a hub id or a save_pretrained folder, "
                                            "or none (default: $XMEMPP_SAM_MODEL, then facebook/sam2.1-hiera-tiny, "
                                            "downloaded when absent unless XMEMPP_OFFLINE=1)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: CUDA when present)")
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    parser.add_argument("--max-frames", type=int, default=300, help="longer videos are cut to this many frames")
    parser.add_argument("--max-side", type=int, default=1280, help="larger frames are downscaled to this long side")
    parser.add_argument("--max-upload-mb", type=float, default=200, help="larger uploads are refused")
    parser.add_argument("--size", type=int, default=480,
                        help="default processing size, short side in pixels (480 is XMem++'s; 360/240 are faster)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto (default: bf16 where the device has native bfloat16 and the start-up check times "
                             "it faster, else fp32), fp32 or bf16")
    parser.add_argument("--max-runs", type=int, default=1, help="propagations running at once over all users")
    parser.add_argument("--max-waiting", type=int, default=16,
                        help="propagations that may wait for the model at once; more are refused with a message")
    parser.add_argument("--no-speed-check", dest="speed_check", action="store_false",
                        help="skip timing the network at start-up (visitors then see each size's time only after "
                             "the first propagation)")
    parser.add_argument("--mcp", action="store_true",
                        help="also serve the API's endpoints as MCP tools at /gradio_api/mcp/ (needs the MCP extra: "
                             "pip install 'gradio[mcp]==6.31.0')")
    args = parser.parse_args(argv)
    for name in ("max_frames", "max_side", "max_upload_mb", "max_runs", "max_waiting"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.size < 16:
        parser.error("--size must be at least 16")
    if args.mcp and importlib.util.find_spec("mcp") is None:
        parser.error("--mcp needs the MCP extra: pip install 'gradio[mcp]==6.31.0'")
    return args


def load_models(args: argparse.Namespace) -> tuple[object | None, str, object | None, str]:
    """The shared XMem network and SAM model, each with the sentence saying why it is missing (else "").

    Whether the download hosts answer is decided first, at once (xmempp.online): an offline machine starts
    within about a second of the time it takes with XMEMPP_OFFLINE=1, instead of waiting on the hub's retries.
    """
    sam_source = args.sam_model or os.environ.get("XMEMPP_SAM_MODEL") or DEFAULT_SAM_MODEL
    urls = {}
    if os.environ.get("XMEMPP_OFFLINE") != "1":
        if find_weights(args.weights) is None:
            urls["xmem"] = WEIGHTS_URL
        if sam_source.strip().lower() != "none" and not Path(sam_source).exists():  # a hub id, not a folder
            urls["sam"] = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    answers = reachable(urls.values())
    network, message = load_shared_network(args.weights, args.device, online=answers.get(urls.get("xmem"), False))
    hub_online = answers.get(urls.get("sam"), False)
    if not hub_online:
        _hub_offline()
    prompt_model, prompt_message = load_prompt_model(args.sam_model, network.device if network else args.device,
                                                     offline=not hub_online)
    return network, message, prompt_model, prompt_message


def _hub_offline() -> None:
    """Put Hugging Face's hub in offline mode for this process. It reads HF_HUB_OFFLINE when first imported (gradio
    imports it before this runs), and without it even a load from the cache fetches a registry, waiting 3 s for
    a network that does not answer."""
    import huggingface_hub.constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    huggingface_hub.constants.HF_HUB_OFFLINE = True


def load_shared_network(weights: str | None, device: str | None, online: bool = True) -> tuple[object | None, str]:
    """The network every session shares, or None and the message that says why there is none; the official
    weights are downloaded when none are found, `online` and XMEMPP_OFFLINE is not 1."""
    path = find_weights(weights)
    if path is None and online and os.environ.get("XMEMPP_OFFLINE") != "1":
        try:
            path = ensure_weights()
        except XMemPPError as error:
            log.warning("%s", error)
    if path is None:
        return None, missing_weights_message()
    log.info("loading weights from %s", path)
    return load_network(path, device), ""


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # besides Ctrl-C (SIGINT), which Python raises already
STOP_WAIT_S = 30  # for the frames under way when the server stops: seconds on a CPU at the largest size


def upload_limit_bytes(max_upload_mb: float) -> int:
    """--max-upload-mb as the bytes Gradio's launch takes: a text such as "5.0mb" (argparse gives a float) is
    refused by Gradio's parser at launch, "Invalid file size unit: .0MB"."""
    return int(max_upload_mb * 2**20)


def _interrupt(signum: int, frame: object) -> None:
    # Once: a second SIGTERM while the server closed (a supervisor, or `timeout`, passing on a stop) interrupted the
    # closing itself, and the log ended in a traceback.
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    raise KeyboardInterrupt  # Gradio's launch ends on it, closing its server; then atexit cleans up


def _stop_runs(runs: RunQueue) -> None:
    """The server has stopped serving: the runs under way stop at the end of the frame being computed. Ended under
    it, the process aborted in torch's threads (exit 134) and the work root went from under the run; an agent's call
    held the server until its run's end (sixty-first hostile round)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C meanwhile: they end all the same
    try:
        busy = runs.close(0)
        if busy:
            log.info("stopping: waiting for %d run(s) to end the frame under way (at most %d s)", busy, STOP_WAIT_S)
            busy = runs.close(STOP_WAIT_S)
        if busy:
            log.warning("stopping with %d run(s) still computing after %d s", busy, STOP_WAIT_S)
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs each request's URL, a visitor's user:password@ in a video URL included, and every MCP call twice
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parse_args(argv)
    try:
        network, message, prompt_model, prompt_message = load_models(args)
    except (XMemPPError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    work_root = make_work_root()
    # A stopped server (SIGTERM, as a Space restart sends; SIGHUP, its terminal closed) would otherwise die without
    # running atexit, leaving its work root, visitors' files included, until a later start. One started with SIGHUP
    # ignored (nohup) keeps it so.
    for number in STOP_SIGNALS:
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _interrupt)
    held = WorkRoot(work_root)  # removes what the server made in it at exit
    guard_gradios_uploads(held)
    upload_folder = use_upload_folder(work_root)
    held.own(upload_folder)
    if args.mcp:
        serve_mcp_tools(upload_folder, upload_limit_bytes(args.max_upload_mb))
    held.watch()
    settings = AppSettings(network=network, weights_message=message, work_root=work_root, example=EXAMPLE,
                           work_root_held=held,
                           limits=Limits(args.max_frames, args.max_side, args.max_upload_mb), size=args.size,
                           max_runs=args.max_runs, max_waiting=args.max_waiting,
                           speed_check=args.speed_check and not on_zero_gpu(),  # no GPU outside its worker there
                           prompt_model=prompt_model, prompt_message=prompt_message,
                           precision=PrecisionChoice(args.precision),
                           device_work=DeviceWork(network) if network is not None else None)
    runs = RunQueue(args.max_runs, args.max_waiting)
    try:
        blocks = build_demo(settings, runs)
        blocks.queue(default_concurrency_limit=4)
        blocks.launch(share=args.share, max_file_size=upload_limit_bytes(args.max_upload_mb), mcp_server=args.mcp,
                      **launch_options(settings))
    except KeyboardInterrupt:  # stopped (SIGTERM, Ctrl-C) while it started, before it served: a traceback said no more
        log.info("stopped while starting")
    except OSError as error:  # the machine's limits (ulimit -n 20 at launch, 16 while building) in Gradio's traceback
        problem = file_system_problem(error)
        if problem is None:
            raise
        hint = "; raise the limit (ulimit -n)" if error.errno in (errno.EMFILE, errno.ENFILE) else ""
        raise SystemExit(f"error: the web server stopped: {problem}{hint}") from None
    finally:  # before atexit removes the work root the runs write into
        _stop_runs(runs)


if __name__ == "__main__":
    main()
