"""Finding, downloading and strictly loading the official XMem weights."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import secrets
import struct
import urllib.error
import urllib.request
import warnings
from http.client import HTTPException
from pathlib import Path

import torch

from xmempp.errors import (
    InputNotFoundError,
    OutOfMemoryError,
    PathArgument,
    XMemPPError,
    file_system_problem,
    file_system_problems_as_error,
    is_out_of_memory,
    kind_of_entry,
    path_argument,
    refuse_a_url,
    shown,
    weights_argument,
    yes_or_no,
)
from xmempp.model.network import XMem

log = logging.getLogger(__name__)

WEIGHTS_URL = "https://github.com/hkchengrex/XMem/releases/download/v1.0/XMem.pth"
WEIGHTS_FILENAME = "XMem.pth"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def default_weights_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """Where the weights are looked for and downloaded: `weights/` in a checkout of the repository (beside the
    `xmempp/` package and `pyproject.toml`), else, for an installed package, torch hub's `checkpoints` folder
    (`$TORCH_HOME/hub/checkpoints`, by default `~/.cache/torch/hub/checkpoints`), never inside site-packages."""
    checkout = package_dir.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / "weights"
    return Path(torch.hub.get_dir()) / "checkpoints"


DEFAULT_WEIGHTS_DIR = default_weights_dir()

# The official checkpoint calls the key encoder's first ResNet stage `res2`; torchvision calls it `layer1`.
_RENAMES = {"key_encoder.res2.": "key_encoder.layer1."}


def _rename(name: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        if name.startswith(old):
            return new + name[len(old):]
    return name


def checkpoint_to_model_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map official tensor names to this package's module names."""
    return {_rename(name, _RENAMES): tensor for name, tensor in state_dict.items()}


def model_to_checkpoint_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map this package's module names to the official tensor names (to write checkpoints)."""
    return {official_name(name): tensor for name, tensor in state_dict.items()}


def official_name(name: str) -> str:
    """The checkpoint's name for one of our parameters."""
    return _rename(name, {new: old for old, new in _RENAMES.items()})


def load_network(path: PathArgument, device: torch.device | str | None = None,
                 channels_last: bool | None = None) -> XMem:
    """Build XMem from an official-layout checkpoint, refusing missing, unexpected or mis-shaped tensors.

    `channels_last` stores the convolution weights channels-last, so that every convolution runs in that
    layout; None: on the CPU, where it is faster (measured in docs/BENCHMARKS.md), not on CUDA (not measured).
    """
    path = path_argument(path, "path")
    if channels_last is not None:
        channels_last = yes_or_no(channels_last, "channels_last")
    if not path.is_file():
        raise weights_not_found(path)
    state = read_checkpoint(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise XMemPPError(f"{shown(path)} does not hold a state dict of tensors")

    # Built on the meta device: no memory and no random initialisation, which the checkpoint would replace.
    with torch.device("meta"):
        network = XMem()
    expected = network.state_dict()
    state = checkpoint_to_model_names(state)
    missing = [official_name(n) for n in expected if n not in state and not n.endswith("num_batches_tracked")]
    unexpected = [official_name(n) for n in state if n not in expected]
    for problem, names in (("missing", missing), ("unexpected", unexpected)):
        if names:
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            raise XMemPPError(f"{shown(path)}: {problem} tensor {names[0]}{more}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise XMemPPError(f"{shown(path)}: tensor {official_name(name)} has shape {tuple(tensor.shape)}, "
                              f"expected {tuple(expected[name].shape)}")
    # Only num_batches_tracked may be absent (checked above); it counts training steps and changes nothing here.
    state = {name: state[name].to(reference.dtype) if name in state else torch.zeros_like(reference, device="cpu")
             for name, reference in expected.items()}
    network.load_state_dict(state, strict=True, assign=True)
    network.loaded_from = os.path.realpath(path)  # as the system reached it: `LINK/../keys.npy` is not ./keys.npy
    device = resolve_device(device)
    network = network.to(device).eval().requires_grad_(False)
    if channels_last if channels_last is not None else device.type == "cpu":
        network = network.to(memory_format=torch.channels_last)
    return network


# What torch.load raises for a file that is truncated, damaged or no checkpoint at all: its zip reader says
# RuntimeError, the weights-only unpickler EOFError, ValueError, or IndexError / KeyError / struct.error when
# malformed data empties its stack or memo. A TypeError or AttributeError, the marks of a bug, pass through.
_MALFORMED_CHECKPOINT_ERRORS = (RuntimeError, EOFError, ValueError, IndexError, KeyError, struct.error)


def read_checkpoint(path: Path, mmap: bool = False) -> object:
    """What a checkpoint file holds, on the CPU: its state dict (also when wrapped as {"state_dict": ...}).

    With `mmap`, tensors are read from the file only when used (for a file in the zip format; a legacy one
    is read whole). A file torch cannot read is an XMemPPError naming it.
    """
    try:
        with warnings.catch_warnings():
            # torch warns that its weights-only unpickler "might not support all instructions" of a pickle of a
            # newer protocol, before refusing it (refused below, in our words) or reading it (then nothing to say)
            warnings.filterwarnings("ignore", message=r"Detected pickle protocol \d+ in the checkpoint")
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            except RuntimeError:
                if not mmap:
                    raise
                state = torch.load(path, map_location="cpu", weights_only=True)  # legacy format: cannot be mapped
    except pickle.UnpicklingError:  # torch's long text ("Weights only load failed... Unsupported operand 149")
        raise XMemPPError(f"{shown(path)} is not a readable PyTorch checkpoint: it is damaged, or it holds Python "
                          "objects "
                          "besides tensors, which are never loaded (loading them could run any code)") from None
    except OSError as error:  # the disk or the permissions, or (mmap, reading) a file too short to be one
        raise XMemPPError(f"cannot read the weights {shown(path)}: {file_system_problem(error) or error}") from None
    except _MALFORMED_CHECKPOINT_ERRORS as error:  # torch's words for a truncated or foreign file
        if is_out_of_memory(error):  # "can't allocate memory" under ulimit -v: the machine's, not the file's
            raise OutOfMemoryError(f"out of memory while reading the weights {shown(path)}: allow this process "
                                   "more memory") from None
        if isinstance(error, (IndexError, KeyError, struct.error)):  # the unpickler's stack or memo ran dry
            error = "its data ends early or is not a checkpoint's"
        elif "PytorchStreamReader" in str(error):  # torch's zip reader: "internal miniz error ... high likelihood"
            raise XMemPPError(f"{shown(path)} is not a readable PyTorch checkpoint: it is truncated or not a "
                              "checkpoint (its zip archive cannot be read)") from None
        elif "inline_container.cc" in str(error) or 'hasRecord("' in str(error):
            # torch's archive reader on a zip laid out unlike a checkpoint: a file at its top ("[enforce fail at
            # inline_container.cc:180] . file in archive is not in a subdirectory"), or no record "version"
            raise XMemPPError(f"{shown(path)} is not a readable PyTorch checkpoint: it is a zip archive, but it holds "
                              "no checkpoint (a checkpoint's zip holds one folder with its data.pkl and version)"
                              ) from None
        elif "legacy .tar format" in str(error):  # torch's advice about weights_only, of no use for a file
            raise XMemPPError(f"{shown(path)} is not a readable PyTorch checkpoint: it is in PyTorch's old .tar "
                              "format, or not a checkpoint at all (XMem.pth is a zip checkpoint)") from None
        first_line = (str(error).strip().splitlines() or ["the file ends too early"])[0][:200]
        raise XMemPPError(f"{shown(path)} is not a readable PyTorch checkpoint ({first_line})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state


def resolve_device(device: torch.device | str | None) -> torch.device:
    """`None` means CUDA when present, else the CPU. A device this machine cannot compute on is refused naming it:
    torch's own words for `bogus`, a CUDA device on a machine without one, or `meta` (no data) came out of the run
    as internal failures."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise XMemPPError(f"the device {device!r} is not one torch knows ({error}); give cpu, cuda or cuda:N") from None
    if resolved.type == "meta":
        raise XMemPPError("the device 'meta' holds no data, so nothing can be computed on it; give cpu, cuda or cuda:N")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise XMemPPError(f"the device {str(resolved)!r} is not on this machine, which has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
    try:  # the cheapest question that reaches the backend: is it built in, is its driver there
        torch.empty(0, device=resolved)
    except (RuntimeError, AssertionError, NotImplementedError) as error:
        # torch's own words name its internals ("Could not run 'aten::empty.memory_format' with arguments from
        # the 'MPS' backend"): logged for whoever debugs, not shown
        log.info("device %s cannot be used: %s", resolved, error)
        raise XMemPPError(f"the device {str(resolved)!r} cannot be used on this machine: this PyTorch was built "
                          "without it, or its driver or hardware is missing; give cpu or a device this machine has") from None
    return resolved


def weights_not_found(path: Path) -> XMemPPError:
    """The error for weights that are not a file: missing, or a folder, a device or a pipe named as the file."""
    if os.path.lexists(path) and not path.is_file():
        return XMemPPError(f"the weights {shown(path)} are not a checkpoint file ({kind_of_entry(path)}): give the "
                           "XMem.pth file")
    return InputNotFoundError(f"weights file not found: {shown(path)}")


def find_weights(weights: PathArgument | None = None) -> Path | None:
    """The weights file to use: the argument, then $XMEMPP_WEIGHTS, then DEFAULT_WEIGHTS_DIR/XMem.pth; None if absent."""
    if weights is not None:
        path = weights_argument(weights)
        if not path.is_file():
            raise weights_not_found(path)
        return path
    from_env = os.environ.get("XMEMPP_WEIGHTS")
    if from_env:
        refuse_a_url(from_env, "XMEMPP_WEIGHTS")
        path = Path(from_env)
        if os.path.lexists(path) and not path.is_file():  # /dev/zero, a folder: there, but no checkpoint file
            raise XMemPPError(f"XMEMPP_WEIGHTS points to {shown(path)}, which is not a checkpoint file "
                              f"({kind_of_entry(path)}): point it at the XMem.pth file")
        if not path.is_file():
            raise InputNotFoundError(f"XMEMPP_WEIGHTS points to {shown(path)}, which does not exist")
        return path
    default = DEFAULT_WEIGHTS_DIR / WEIGHTS_FILENAME
    return default if default.is_file() else None


def missing_weights_message() -> str:
    return ("XMem weights not found. Run `python -m xmempp download-weights` (online), or download "
            f"{WEIGHTS_URL} and put it at {DEFAULT_WEIGHTS_DIR / WEIGHTS_FILENAME}, or point XMEMPP_WEIGHTS (or "
            "--weights) at the file.")


def ensure_weights(weights: PathArgument | None = None, progress: bool = True) -> Path:
    """Find the weights, downloading the official XMem.pth when none exist and XMEMPP_OFFLINE is not 1."""
    found = find_weights(weights)
    if found is not None:
        return found
    if os.environ.get("XMEMPP_OFFLINE") == "1":
        raise XMemPPError(missing_weights_message() + " (XMEMPP_OFFLINE=1, so nothing was downloaded)")
    return download_weights(DEFAULT_WEIGHTS_DIR / WEIGHTS_FILENAME, progress=progress)


def download_weights(destination: Path, url: str = WEIGHTS_URL, progress: bool = True) -> Path:
    """Download to a temporary file beside `destination`; rename it only once complete and loadable."""
    from xmempp.progress import ProgressBar

    folder = destination.parent
    if os.path.lexists(folder) and not folder.is_dir():  # mkdir's FileExistsError was reported as a bug
        raise XMemPPError(f"cannot download the XMem weights into {shown(folder)}: it is {kind_of_entry(folder)}, not a "
                          "folder; move it, or give the weights with --weights (XMEMPP_WEIGHTS)")
    with file_system_problems_as_error(f"make the weights folder {shown(folder)}"):
        folder.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(destination) and not destination.is_file():  # found only after the whole download before
        raise XMemPPError(f"cannot download the XMem weights to {shown(destination)}: it is "
                          f"{kind_of_entry(destination)}; move it away, or give the weights with --weights")
    # A new file of a name of its own, created here (O_EXCL): a fixed XMem.pth.part could be a link to anyone's
    # file, and the download was written through it. Its mode is the umask's, as the weights' will be.
    partial = destination.with_name(f"{destination.name}.{secrets.token_hex(4)}.part")
    log.info("downloading %s to %s", url, destination)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, \
                open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with ProgressBar(total=total, unit="B", unit_scale=True, desc="XMem.pth", disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        load_network(partial, device="cpu")
        partial.replace(destination)
    except (OSError, HTTPException, XMemPPError) as error:  # the network, the disk, or what was downloaded
        partial.unlink(missing_ok=True)
        raise XMemPPError(f"could not download the XMem weights from {url} ({_download_problem(error)}). "
                          + missing_weights_message()) from None
    except BaseException:  # stopped (Ctrl-C, SIGTERM): each stop left its partial file of up to 250 MB behind
        partial.unlink(missing_ok=True)
        raise
    return destination


def _download_problem(error: BaseException) -> str:
    """Why a download failed, in words: urllib's URLError wraps the network's reason ('<urlopen error [Errno -2]
    Name or service not known>'), which was shown with its class name."""
    reason = getattr(error, "reason", None)  # URLError and HTTPError
    if isinstance(error, urllib.error.HTTPError):
        return f"the server answered {error.code} {error.reason}"
    if isinstance(reason, OSError):
        return f"no connection: {reason.strerror or reason}"
    if reason is not None:
        return f"no connection: {reason}"
    if isinstance(error, OSError):
        return file_system_problem(error) or error.strerror or str(error)
    return str(error) or "the connection ended early"


def save_random_checkpoint(path: str | Path, seed: int = 0, pred_bias: float = 1.0) -> Path:
    """Write random weights in the official layout (for tests and demos without the real file).

    The masks they give mean nothing; the raised decoder bias only makes them non-empty blobs.
    """
    torch.manual_seed(seed)
    state = XMem().state_dict()
    state["decoder.pred.bias"] = state["decoder.pred.bias"] + pred_bias
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model_to_checkpoint_names(state), path)
    return path


FINGERPRINT_TENSOR = "key_proj.key_proj.weight"  # the same name in the checkpoint and in the network


def weights_fingerprint(source: XMem | str | Path) -> str:
    """A short identity of the weights, from a loaded network or a checkpoint file (without building a network).

    Both give the same value for the same weights: a digest of one trained tensor's float32 bytes.
    """
    if isinstance(source, XMem):
        tensor = source.state_dict()[FINGERPRINT_TENSOR]
    else:
        path = Path(source)
        state = read_checkpoint(path, mmap=True)
        tensor = state.get(FINGERPRINT_TENSOR) if isinstance(state, dict) else None
        if not isinstance(tensor, torch.Tensor):
            raise XMemPPError(f"{shown(path)}: missing tensor {FINGERPRINT_TENSOR}")
    data = tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return "blake2b:" + hashlib.blake2b(data, digest_size=16).hexdigest()
