"""Entry point of the XMem++ Gradio app (a Hugging Face Space runs `python app.py`): parse flags, load, launch."""

from __future__ import annotations

import argparse
import atexit
import errno
import importlib.util
import logging
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import spaces  # noqa: F401  (first: on a ZeroGPU Space it must patch torch before torch touches CUDA)

from demo.clicks import load_prompt_model
from demo.gpu import DeviceWork, on_zero_gpu
from demo.media import Limits
from demo.speed import PrecisionChoice
from demo.state import AppSettings
from demo.ui import build_demo, launch_options
from xmempp.errors import XMemPPError, file_system_problem
from xmempp.model.weights import WEIGHTS_URL, ensure_weights, find_weights, load_network, missing_weights_message
from xmempp.mounts import mount_points, mount_risk
from xmempp.online import reachable
from xmempp.outputs import identity, remove_own_folder
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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # past what a pid can be: a folder named so by no server alive
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def hold_for_life(folder: Path) -> None:
    """Lock `folder` (flock) until this process ends, when the kernel lets go of it, killed or not: the proof that
    a work root's server still runs. Its pid alone proved nothing across PID namespaces (a container sharing
    TMPDIR): a second server there removed a running server's work root, its visitors' frames and masks with it."""
    if fcntl is None:
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # never closed; not passed on to child processes
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _server_gone(folder: Path, pid: int) -> bool:
    """Whether the server of a work root has ended: no process holds its lock (`hold_for_life`). The lock decides,
    not the pid in the root's name: a pid names a process only in its own PID namespace. A server that ran as pid 1
    of a container and was killed left its root for good: a start in another namespace is pid 1 itself, and a start
    on the host sees init alive. Where there are no locks (Windows), no process of that pid here."""
    if fcntl is None:
        return pid != os.getpid() and not _process_alive(pid)
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # cannot be looked at: left
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: its server runs, in another PID namespace
        return False
    finally:
        os.close(descriptor)
    return True


def keep_work_root_held(work_root: Path, every_s: float = 1.0) -> threading.Thread:
    """Watch the work root's path for as long as the server runs, and hold whatever folder is made there again.

    A work root removed while its server ran (a cleaner of temporary files, an operator) was made again at its path
    by the next session or upload (Gradio's own too), but unlocked: the next server started on the same TMPDIR
    took it for a dead server's and removed it, with every visitor's frames and annotations made since. A folder at
    the path that is not the one held is locked in turn (within `every_s`), and goes when the server exits."""
    held = identity(work_root)

    def watch() -> None:
        nonlocal held
        while True:
            time.sleep(every_s)
            now = None if work_root.is_symlink() else identity(work_root)
            if now is None or now == held:
                continue
            try:
                hold_for_life(work_root)
            except OSError as error:  # another process holds it: not this server's to take
                log.warning("the work root %s was replaced while the server ran, and cannot be held (%s)", work_root,
                            error.strerror or error)
                held = now
                continue
            log.warning("the work root %s was removed or moved while the server ran (a cleaner of temporary files?): "
                        "the visitors' files in it then are gone from there; the folder made there since is held as "
                        "the work root", work_root)
            held = now
            atexit.register(remove_own_folder, work_root, now)

    thread = threading.Thread(target=watch, name="work-root-held", daemon=True)
    thread.start()
    return thread


def _holds_a_locked_folder(folder: Path) -> bool:
    """Whether a folder in `folder` (itself left out) is locked by a process: a running server's work root moved
    into another root's place, or a run's output folder. Looked at without following links; what cannot be opened
    is no lock that can be seen."""
    if fcntl is None:
        return False
    pending = [folder]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            try:
                descriptor = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # refused while anyone holds it, even shared
            except BlockingIOError:
                return True
            except OSError:
                pass
            finally:
                os.close(descriptor)
            pending.append(Path(entry.path))
    return False


def remove_stale_work_roots(parent: Path) -> list[Path]:
    """Delete the work roots of app servers that died without cleaning up (killed, crashed); returns them.

    A server removes its own work root when it exits; a killed one cannot, and every visitor's frames stay behind.
    One that is or holds a mount point is left: removing it would only leave the folder mounted there, anyone's,
    and the folders holding it.
    """
    removed, mounts = [], mount_points()
    for folder in parent.glob(f"{WORK_ROOT_PREFIX}*-*"):
        if folder.is_symlink() or not folder.is_dir():  # not a work root, whatever its name: left, and not said removed
            continue
        pid = folder.name[len(WORK_ROOT_PREFIX):].split("-", 1)[0]
        if not (pid.isascii() and pid.isdigit() and _server_gone(folder, int(pid))):
            continue
        if _holds_a_locked_folder(folder):  # a running server's root (or a run) moved into it: in use
            log.warning("left %s: a folder in it is in use by a running process", folder)
            continue
        risk = mount_risk(folder, mounts)
        if risk is not None:
            log.warning("left %s: %s", folder, risk)
            continue
        remove_own_folder(folder)  # never what was mounted in it since; a warning says what stays
        if not os.path.lexists(folder):  # made immutable, or anyone's: not said removed
            removed.append(folder)
    return removed


def make_work_root() -> Path:
    """This server's folder for every session's files (under $TMPDIR), deleted when the server exits."""
    parent = Path(tempfile.gettempdir())
    for folder in remove_stale_work_roots(parent):
        log.info("removed %s, left by a server that is no longer running", folder)
    # Made under a hidden name, locked, then named as a work root: no other server's clean-up sees it unlocked.
    starting = Path(tempfile.mkdtemp(prefix=f".{WORK_ROOT_PREFIX}starting-", dir=parent))
    hold_for_life(starting)
    work_root = parent / f"{WORK_ROOT_PREFIX}{os.getpid()}-{starting.name.rsplit('-', 1)[1]}"
    os.rename(starting, work_root)
    atexit.register(remove_own_folder, work_root, identity(work_root))
    # A stopped server (SIGTERM, as a Space restart sends) would otherwise die without running atexit.
    signal.signal(signal.SIGTERM, _interrupt)
    log.info("session files go to %s", work_root)
    return work_root


def use_upload_folder(work_root: Path) -> Path:
    """Gradio's upload cache inside this server's work root (Gradio reads GRADIO_TEMP_DIR when the app is built):
    visitors' uploads then go with the work root, at exit and, after a kill, at the next start. Left in Gradio's
    shared /tmp/gradio, a killed server's uploads stayed there for good."""
    folder = work_root / "uploads"
    folder.mkdir(exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


def upload_limit_bytes(max_upload_mb: float) -> int:
    """--max-upload-mb as the bytes Gradio's launch takes: a text such as "5.0mb" (argparse gives a float) is
    refused by Gradio's parser at launch, "Invalid file size unit: .0MB"."""
    return int(max_upload_mb * 2**20)


def _interrupt(signum: int, frame: object) -> None:
    # Once: a second SIGTERM while the server closed (a supervisor, or `timeout`, passing on a stop) interrupted the
    # closing itself, and the log ended in a traceback.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt  # Gradio's launch ends on it, closing its server; then atexit cleans up


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        network, message, prompt_model, prompt_message = load_models(args)
    except (XMemPPError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    work_root = make_work_root()
    keep_work_root_held(work_root)
    use_upload_folder(work_root)
    settings = AppSettings(network=network, weights_message=message, work_root=work_root, example=EXAMPLE,
                           limits=Limits(args.max_frames, args.max_side, args.max_upload_mb), size=args.size,
                           max_runs=args.max_runs, max_waiting=args.max_waiting,
                           speed_check=args.speed_check and not on_zero_gpu(),  # no GPU outside its worker there
                           prompt_model=prompt_model, prompt_message=prompt_message,
                           precision=PrecisionChoice(args.precision),
                           device_work=DeviceWork(network) if network is not None else None)
    try:
        blocks = build_demo(settings)
        blocks.queue(default_concurrency_limit=4)
        blocks.launch(share=args.share, max_file_size=upload_limit_bytes(args.max_upload_mb), mcp_server=args.mcp,
                      **launch_options(settings))
    except OSError as error:  # the machine's limits (ulimit -n 20 at launch, 16 while building) in Gradio's traceback
        problem = file_system_problem(error)
        if problem is None:
            raise
        hint = "; raise the limit (ulimit -n)" if error.errno in (errno.EMFILE, errno.ENFILE) else ""
        raise SystemExit(f"error: the web server stopped: {problem}{hint}") from None


if __name__ == "__main__":
    main()
