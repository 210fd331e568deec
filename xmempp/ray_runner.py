"""Where per-video jobs run: in this process, in order (`xmempp.jobs`), or on Ray, a pool of actors, each
holding one network, one video at a time.

On Ray, a worker process that dies takes only its video down: the actor is replaced and that video retried once.
Every node needs the same Python environment (xmempp and its dependencies) and the same paths to the
weights, dataset and output folder (a shared file system).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from xmempp.errors import XMemPPError, shown
from xmempp.jobs import Job, JobFailure, NetworkSpec, Result, VideoFunction, run_locally, run_safely

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Execution:
    """Where per-video jobs run: in this process (default) or on Ray (`ray=True`, `ray_address` None: local)."""

    network: NetworkSpec
    progress: bool = True  # a progress bar if the weights are downloaded
    ray: bool = False
    ray_address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1


def run_jobs(jobs: list[Job], function: VideoFunction, execution: Execution) -> Iterator[tuple[Job, Result | JobFailure]]:
    """Yield (job, result) for every job: in order in this process, or as they finish on Ray."""
    spec = execution.network.with_weights_found(execution.progress)
    if not execution.ray:
        return run_locally(jobs, function, spec)
    return run_on_ray(jobs, function, spec, address=execution.ray_address, workers=execution.workers,
                      gpus_per_worker=execution.gpus_per_worker, cpus_per_worker=execution.cpus_per_worker)


class VideoWorker:
    """A Ray actor's state: one network, built when the actor starts."""

    def __init__(self, spec: NetworkSpec):
        self.network = spec.build()

    def ready(self) -> tuple[str, int]:
        """Answers once the worker has started, its network built: only then is it given a video. Says where it
        runs (its node, and its process there), so that a stop can reach it gently (`_Workers.stop_all`)."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()

    def run(self, function: VideoFunction, job: Job) -> Result | JobFailure:
        return run_safely(function, self.network, job)


def run_on_ray(jobs: Sequence[Job], function: VideoFunction, spec: NetworkSpec, address: str | None = None,
               workers: int | None = None, gpus_per_worker: float | None = None, cpus_per_worker: float = 1
               ) -> Iterator[tuple[Job, Result | JobFailure]]:
    """Yield (job, result) as videos finish, on the Ray cluster at `address` (None: a local one).

    Uses the running Ray if this process already joined one. Each worker asks for `gpus_per_worker` GPUs
    (default: one when the device is CUDA, or unset on a cluster that has GPUs); `workers` defaults to as
    many as the cluster's resources hold.
    """
    import ray

    started_here = not ray.is_initialized()
    reaper = None
    if started_here and address is None:  # a local Ray, started here: its agents must not outlive this process
        reaper = _start_reaper()
    try:
        if started_here:
            _check_address(address)
        with _HeldSignals() as signals:  # from ray.init on, a stop is handled between Ray's calls, not in one
            if started_here:  # within the clean-up below: a stop right after ray.init shuts down what it started
                _connect(ray, address)
                signals.take_back()
            signals.deliver()
            if address is not None:  # a local Ray shares this process's environment
                _refuse_nodes_without_xmempp(ray, [VideoWorker.__module__, function.__module__], signals.deliver)
            resources = ray.cluster_resources()
            if gpus_per_worker is None:
                wants_gpu = spec.device.startswith("cuda") if spec.device else resources.get("GPU", 0) > 0
                gpus_per_worker = 1.0 if wants_gpu else 0.0
            workers = _workers_to_start(ray, workers, cpus_per_worker, gpus_per_worker)
            actor_class = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=0)(VideoWorker)

            def workers_held() -> int:
                return _workers_held(_live_nodes(ray), cpus_per_worker, gpus_per_worker)

            yield from _dispatch(ray, actor_class, spec, function, list(jobs), max(1, min(workers, len(jobs))),
                                 workers_held, signals.deliver)
    finally:
        if started_here:
            ray.shutdown()
        if reaper is not None:
            reaper.stdin.close()  # the reaper finds nothing left, and ends
            reaper.wait(timeout=REAPER_EXIT_SECONDS)


PROBE_SECONDS = 60  # for every node to run one small task: a node whose workers cannot start never does


def _refuse_nodes_without_xmempp(ray, modules: list[str], deliver: Callable[[], None] = lambda: None) -> None:
    """Refuse, naming them, a cluster whose nodes cannot import `modules` (what a worker imports: README says every
    node needs xmempp installed), or cannot run a task at all, asking each live node before any worker starts.
    `deliver`: hands a signal noted while waiting to the command (`_HeldSignals`)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from xmempp import ray_probe

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    ray.cloudpickle.register_pickle_by_value(ray_probe)
    try:
        probe = ray.remote(num_cpus=0, max_retries=0)(ray_probe.import_problem)
        sent = {probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(
            modules): node for node in nodes}
        asked = {reference: node.get("NodeManagerAddress") or node["NodeID"] for reference, node in sent.items()}
        node_of = {reference: node["NodeID"] for reference, node in sent.items()}
    finally:
        ray.cloudpickle.unregister_pickle_by_value(ray_probe)
    answered, silent = _wait(ray, list(asked), len(asked), PROBE_SECONDS, deliver)
    if silent:
        for reference in silent:
            ray.cancel(reference, force=True)
        raise XMemPPError(f"the Ray node {_nodes_said([asked[reference] for reference in silent])} did not run a task "
                          f"within {PROBE_SECONDS} s: its worker processes do not start (its Python environment? see "
                          "the raylet log in its Ray session folder, logs/); nothing was run")
    problems, failed = {}, {}
    for reference in answered:
        try:
            problem = ray.get(reference)
        except ray.exceptions.RayError as error:  # its worker died: the node with it, or an import that crashes
            failed[reference] = " ".join(_first_line(error).split())[:200]
            continue
        if problem is not None:
            problems[asked[reference]] = problem
    alive = {node["NodeID"] for node in ray.nodes() if node.get("Alive")}
    for reference, words in failed.items():
        if node_of[reference] in alive:  # Ray still places workers there, and each would die the same way
            problems[asked[reference]] = f"a worker there died importing it: {words}"
        else:  # the node died meanwhile: Ray places no worker there
            log.warning("the Ray node %s could not run a task (%s); the other nodes run the videos", asked[reference],
                        words)
    if problems:
        problem = next(iter(problems.values()))
        raise XMemPPError(f"xmempp cannot be imported on the Ray node {_nodes_said(list(problems))} ({problem}): "
                          "every node of the cluster needs it installed, with the same Python packages as here (pip "
                          "install '.[ray]' from xmempp's folder on each node), before the nodes start")


def _nodes_said(nodes: list[str]) -> str:
    return nodes[0] + (f" and {len(nodes) - 1} more" if len(nodes) > 1 else "")


def _live_nodes(ray) -> list[dict]:
    """The resources of each live node of the cluster."""
    return [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]


def _workers_held(nodes: list[dict], cpus_per_worker: float, gpus_per_worker: float) -> int:
    """How many workers of `cpus_per_worker` CPUs and `gpus_per_worker` GPUs the `nodes` (`_live_nodes`) hold."""

    def held_by(node: dict) -> int:
        fits = [int(node.get("CPU", 0) / cpus_per_worker + 1e-9)]
        if gpus_per_worker:
            fits.append(int(node.get("GPU", 0) / gpus_per_worker + 1e-9))
        return min(fits)

    return sum(held_by(node) for node in nodes)


def _workers_to_start(ray, asked: int | None, cpus_per_worker: float, gpus_per_worker: float) -> int:
    """How many workers of `cpus_per_worker` CPUs and `gpus_per_worker` GPUs the cluster's live nodes hold: all
    of them by default, and never more (a worker Ray cannot place never starts, and the video handed to it waited
    forever without a word). None at all is an XMemPPError naming the option."""
    nodes = _live_nodes(ray)
    held = _workers_held(nodes, cpus_per_worker, gpus_per_worker)
    if held == 0:
        largest_cpus = max((node.get("CPU", 0) for node in nodes), default=0)
        if gpus_per_worker and largest_cpus >= cpus_per_worker:
            largest_gpus = max((node.get("GPU", 0) for node in nodes), default=0)
            raise XMemPPError(f"no node of the Ray cluster can hold one worker of {gpus_per_worker:g} GPUs "
                              f"(--gpus-per-worker): its largest has {largest_gpus:g} GPUs; ask for fewer, or run "
                              "on the CPU (--device cpu)")
        raise XMemPPError(f"no node of the Ray cluster can hold one worker of {cpus_per_worker:g} CPUs "
                          f"(--cpus-per-worker): its largest has {largest_cpus:g} CPUs; ask for fewer")
    if asked is not None and asked > held:
        log.warning("--workers %d asks for more workers than the Ray cluster holds (%d of %g CPU%s each): running %d",
                    asked, held, cpus_per_worker, "" if cpus_per_worker == 1 else "s", held)
    return held if asked is None else min(asked, held)


REACH_SECONDS = 10  # for a TCP connection to a cluster's address: Ray alone waited minutes for an unreachable one
REAPER_EXIT_SECONDS = 10
DEFAULT_GCS_PORT = 6379


def _check_address(address: str | None) -> None:
    """An XMemPPError naming the cluster's address when it cannot be reached (within REACH_SECONDS for a
    HOST:PORT) or joined; `auto` is checked as the address it stands for (RAY_ADDRESS, or the cluster last
    started here). Nothing for a local Ray."""
    from_environment = os.environ.get("RAY_ADDRESS", "")
    if address is not None and address != "auto":
        _check_reachable(address)
        _check_joinable(address)
    elif address == "auto" and from_environment not in ("", "auto", "local"):
        _check_reachable(from_environment, " (RAY_ADDRESS, which --ray auto joins)")
        _check_joinable(address, f" (RAY_ADDRESS: {from_environment})")
    elif address == "auto":  # Ray finds the cluster last started here, whose file outlives a killed head
        _check_joinable(address, " (a cluster running on this machine, or the one last started here, which Ray finds "
                                 f"for --ray auto in {shown(_current_cluster_file())})")


def _connect(ray, address: str | None) -> None:
    """Start a local Ray (`address` None) or join the cluster at `address` (checked: `_check_address`); an
    XMemPPError naming the address when Ray refuses the connection, and naming the temporary folder when a local
    Ray cannot start there. A local Ray is started whatever RAY_ADDRESS says (Ray alone joined a cluster it names,
    and waited minutes for one gone)."""
    _without_rays_crash_handler()
    try:
        ray.init(address="local" if address is None else address, include_dashboard=False,
                 logging_level=logging.WARNING)
    except ConnectionError as error:  # Ray's word for a cluster it could not join, or no cluster for "auto"
        details = _first_line(error)
        where = "a local Ray could not start" if address is None else f"cannot join the Ray cluster at {address}"
        raise XMemPPError(f"{where} ({details}); a head may advertise another address than the one given: on "
                          "one of its nodes, --ray auto finds it") from None
    except Exception as error:  # Ray's own startup: a socket path too long, no room, a node timed out
        log.debug("Ray could not start or join", exc_info=True)
        if address is not None:  # ray:// without ray[client] installed, among others
            raise XMemPPError(f"cannot join the Ray cluster at {address} ({_first_line(error)})") from None
        home = os.path.expanduser("~")
        if os.path.join(home, ".ray") in str(error):  # its token in ~/.ray (HOME=/ is in every path)
            raise XMemPPError(f"a local Ray could not start ({_first_line(error)}): Ray keeps a file in the .ray "
                              f"folder of the home folder {shown(Path(home))}; set HOME to a folder it may write "
                              "into") from None
        raise XMemPPError(f"a local Ray could not start ({_first_line(error)}): Ray keeps its sockets, logs and "
                          f"objects in the temporary folder {shown(Path(tempfile.gettempdir()))}, which needs a short "
                          "path (a socket's whole path has at most 107 bytes) and free room; set TMPDIR to such a "
                          "folder") from None


def _without_rays_crash_handler() -> None:
    """Keep Ray's core from setting its crash handler (absl's) in this process: set for SIGTERM too, it took a
    signal that came in the last moments of ray.init, printed a crash dump and aborted the batch, exit 134
    (fifty-eighth hostile round). Ray reads this setting as ray.init starts its core; its workers keep theirs."""
    with contextlib.suppress(ImportError, AttributeError):
        from ray._private import ray_constants

        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


KEPT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGXCPU") if hasattr(signal, name))


class _HeldSignals:
    """The command's signals (SIGINT, SIGTERM, SIGHUP, SIGXCPU) noted while Ray runs, and handed to the command's
    own handlers between Ray's calls (`deliver`), never inside one.

    ray.init sets its own handler for SIGTERM (and its core a C handler that dumps a stack): a SIGTERM to `batch
    --ray` printed Ray's crash dump and exited 1, or 15; one that came while ray.init forked was raised inside
    logging's fork hook, "ignored", and the batch ran on to exit 0 (fifty-fifth and fifty-sixth hostile rounds).
    And a handler's exception raised while Ray's core waits came out wrapped in a SystemError, "a bug", or was lost
    and the batch ran on to exit 0 (fifty-seventh round). So within the block a signal is only noted, Ray's calls to
    signal.signal for these signals are left unanswered, and a signal noted goes to the command's handler where
    `deliver` is called (after each of Ray's waits, at most STOP_LOOK_SECONDS apart) or as the block ends. Only in
    the main thread, where handlers can be set."""

    def __init__(self):
        self.handlers: dict = {}  # the command's, by signal
        self.noted: list[int] = []

    def __enter__(self) -> _HeldSignals:
        if threading.current_thread() is threading.main_thread():
            self.handlers = {number: handler for number in KEPT_SIGNALS
                             if (handler := signal.getsignal(number)) is not None}  # None: set outside Python
            self._set_handler = signal.signal
            for number in self.handlers:
                self._set_handler(number, self._note)
            signal.signal = self._kept_unless_other
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if not self.handlers:
            return
        signal.signal = self._set_handler
        for number, handler in self.handlers.items():
            self._set_handler(number, handler)
        if kind is None:  # a stop that came at the end is the command's still
            self.deliver()

    def take_back(self) -> None:
        """Handle the signals here again, after ray.init: its core set C handlers of its own, which print a crash
        dump ("*** SIGTERM received at time=...") before anything of the command's runs."""
        for number in self.handlers:
            self._set_handler(number, self._note)

    def deliver(self) -> None:
        """Hand the first signal noted to the command's handler, here: its stop raises from this call."""
        if not self.noted:
            return
        number = self.noted[0]
        self.noted.clear()
        handler = self.handlers[number]
        if callable(handler):
            handler(number, None)
        elif handler == signal.SIG_DFL:  # the system's own action: the process ends
            self._set_handler(number, signal.SIG_DFL)
            signal.raise_signal(number)

    def _note(self, number: int, frame: object) -> None:
        self.noted.append(number)

    def _kept_unless_other(self, number, handler):
        return signal.getsignal(number) if number in self.handlers else self._set_handler(number, handler)


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the names in its errors
XMEMPP_ERROR_LINE = re.compile(r"^xmempp\.errors\.\w+: (.+)$", re.M)


def _why_no_worker_started(error: BaseException) -> str:
    """Why a worker could not start, in words: xmempp's own message when building its network failed there (weights
    that only the driver has), which Ray carries only inside the worker's traceback; else Ray's first line, without
    its colour codes (they reached summary.csv: fifty-sixth hostile round)."""
    text = ANSI_ESCAPE.sub("", str(error))
    found = XMEMPP_ERROR_LINE.findall(text)
    return found[-1] if found else (text.strip().splitlines() or [type(error).__name__])[0][:300]


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _host_and_port(address: str, given_as: str) -> tuple[str, int]:
    """The host and port of a --ray address (HOST:PORT, [IPv6]:PORT, ray://..., the port 6379 when left out), or
    an XMemPPError saying what is wrong with it: each such spelling was looked up as a host name, or worse."""
    expected = (f"--ray {address}{given_as}: expected HOST:PORT (as `ray start --head` prints it), ray://HOST:PORT "
                "or auto, a port from 1 to 65535")
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", address)
    if scheme and scheme.group(1) != "ray":  # http://, RAY://: looked up as a host named "http"
        raise XMemPPError(f"{expected}; {scheme.group(1)}:// is not one of them")
    if address.lower().startswith("ray:/") and not scheme:  # ray:/host:port (ray:6379 is a host named ray)
        raise XMemPPError(f"{expected}; ray:// takes two slashes")
    rest = address.removeprefix("ray://")
    if not rest or (rest.startswith(":") and ":" not in rest[1:]) or rest.startswith("[]"):  # `:6379`: host "6379"
        raise XMemPPError(f"{expected}; it names no host")
    if rest.startswith("[") and "]" in rest:  # an IPv6 address, written as Ray writes it: [::1]:6379
        host, _, after = rest[1:].partition("]")
        if after and not after.startswith(":"):
            raise XMemPPError(expected)
        port = after[1:] if after else str(DEFAULT_GCS_PORT)
    else:
        host, _, port = rest.rpartition(":")
        if not host:
            host, port = port, str(DEFAULT_GCS_PORT)
        if ":" in host:  # ::1:6379, which Ray cannot split either; or host:6379:1
            if not _is_ipv6(host):
                raise XMemPPError(expected)
            raise XMemPPError(f"--ray {address}{given_as}: write an IPv6 address in brackets, as [::1]:6379")
    # ASCII digits alone: `²` is a digit to str.isdigit, and int() refused it, "a bug" (fifty-ninth round)
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise XMemPPError(expected)
    return host, int(port)


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6  # a zone (fe80::1%lo) included
    except ValueError:
        return False


def _check_reachable(address: str, given_as: str = "") -> None:
    """Refuse, naming it (and `given_as`, where it came from when not --ray), an address whose host and port take
    no TCP connection within REACH_SECONDS, or take one but answer no gRPC there, as Ray's head does (Ray alone
    retried such a port for minutes, unsaid)."""
    host, port = _host_and_port(address, given_as)
    try:
        with socket.create_connection((host, port), timeout=REACH_SECONDS) as connection:
            speaks_grpc = _answers_http2(connection)
    except UnicodeError:  # a host name with an empty or over-long part (`a..b`): the system's look-up never began
        raise XMemPPError(f"--ray {address}{given_as}: its host name is not valid (a part of it empty, or longer than "
                          "63 letters)") from None
    except socket.gaierror as error:  # answered at once: no time-out to speak of
        raise XMemPPError(f"cannot reach the Ray cluster at {address}{given_as}: its host name {host!r} cannot be "
                          f"looked up ({error.strerror or error})") from None
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise XMemPPError(f"cannot reach the Ray cluster at {address}{given_as} ({reason} within "
                          f"{REACH_SECONDS} s): is a Ray head running there? `ray start --head` prints its address"
                          ) from None
    if not speaks_grpc:
        raise XMemPPError(f"cannot join the Ray cluster at {address}{given_as}: something takes connections there, "
                          f"but no Ray head answers (no gRPC within {REACH_SECONDS} s); `ray start --head` prints "
                          "the address of its head")


# A driver joining in a child process: a peer that opens gRPC connections but answers no call (or, under
# RAY_USE_TLS, no handshake) held Ray's own join for many minutes, retrying unsaid; a child can be stopped.
JOIN_SECONDS = 30
# The child dies with the driver (Linux's parent-death signal): a driver killed with SIGKILL left it retrying the
# address for minutes.
# `python -c` puts the folder it starts in first on the path: a random.py (or logging.py) there was imported and the
# cluster blamed. Python 3.11's -P leaves it out, but 3.10 refuses that option ("Unknown option: -P"), so the probe
# drops it itself, before any import that folder could shadow.
_JOIN_PROBE = """
import sys
if not getattr(sys.flags, "safe_path", False):
    del sys.path[0]
import ctypes, logging, os, signal
if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[2]):
        sys.exit(1)
import ray
ray.init(address=sys.argv[1], include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
ray.shutdown()
"""
AUTHENTICATION_REFUSED = ("InvalidAuthToken", "Unauthenticated")  # Ray's words for a token missing or wrong


def _current_cluster_file() -> Path:
    """The file where Ray notes the address of the cluster last started on this machine, found as Ray finds it."""
    if "RAY_TMPDIR" in os.environ:
        base = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        base = os.environ["TMPDIR"]
    else:
        base = "/tmp" if sys.platform.startswith(("linux", "darwin")) else tempfile.gettempdir()
    return Path(base) / "ray" / "ray_current_cluster"


def _check_joinable(address: str, given_as: str = "") -> None:
    """Refuse, naming it, a cluster address a driver cannot join, within JOIN_SECONDS, with the cause where Ray's
    log tells it (a head asking for a token): a failed join is said here, and this process never tries it again
    (which printed Ray's log lines for as long again)."""
    try:
        tried = subprocess.run([sys.executable, "-c", _JOIN_PROBE, address, str(os.getpid())],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=JOIN_SECONDS)
    except subprocess.TimeoutExpired as stopped:
        _refuse_for_a_token(address, given_as, stopped.stderr)
        tls = (" RAY_USE_TLS is set here: does the head use TLS, and do RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY and "
               "RAY_TLS_CA_CERT name its certificates?" if _uses_tls() else "")
        raise XMemPPError(f"cannot join the Ray cluster at {address}{given_as}: joining it did not finish within "
                          f"{JOIN_SECONDS} s; is a Ray head running there, and does it advertise an address this "
                          f"machine reaches? On one of its nodes, --ray auto finds it.{tls}") from None
    if tried.returncode == 0:
        return
    _refuse_for_a_token(address, given_as, tried.stderr)
    lines = (tried.stderr or b"").decode(errors="replace").strip().splitlines()
    last = lines[-1] if lines else f"exit status {tried.returncode}"
    error_name, _, words = last.partition(": ")
    reason = words if words and error_name.isidentifier() else last  # "ConnectionError: Failed to connect ..."
    hint = ("; a head may advertise another address than the one given: on one of its nodes, --ray auto finds it"
            if error_name == "ConnectionError" else "")
    raise XMemPPError(f"cannot join the Ray cluster at {address}{given_as} ({reason[:300]}){hint}")


def _refuse_for_a_token(address: str, given_as: str, said: bytes | None) -> None:
    if any(words in (said or b"").decode(errors="replace") for words in AUTHENTICATION_REFUSED):
        raise XMemPPError(f"cannot join the Ray cluster at {address}{given_as}: its head asks for a token "
                          "(`ray start --head` turns token authentication on): set RAY_AUTH_MODE=token here, with "
                          "the head's token in ~/.ray/auth_token or RAY_AUTH_TOKEN")


def _uses_tls() -> bool:
    return os.environ.get("RAY_USE_TLS", "").lower() in ("1", "true")


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # and an empty SETTINGS frame


def _answers_http2(connection: socket.socket) -> bool:
    """Whether the server on `connection` answers HTTP/2's preface with a SETTINGS frame, as every gRPC server
    (Ray's head, and its client server at ray://) does at once. True where Ray speaks TLS (RAY_USE_TLS), whose
    handshake comes first."""
    if _uses_tls():
        return True
    connection.sendall(HTTP2_PREFACE)
    frame = b""
    while len(frame) < 9:  # a frame's header: length (3 bytes), type (4 is SETTINGS), flags, stream
        try:
            part = connection.recv(9 - len(frame))
        except TimeoutError:
            return False
        if not part:
            return False
        frame += part
    return frame[3] == 4


def _start_reaper() -> subprocess.Popen | None:
    """The watcher that kills what Ray started here once this process ends, however it ends (see
    `xmempp.ray_reaper`); None where it cannot work (no /proc)."""
    if not sys.platform.startswith("linux"):
        return None
    return subprocess.Popen([sys.executable, "-m", "xmempp.ray_reaper", str(os.getpid())], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


LOOK_SECONDS = 10  # how often a wait for a video looks at what the cluster's live nodes can run
NODES_LOST_SECONDS = 60  # how long no live node may hold a worker before the videos left fail: Ray's own wait
NODES_LOST = "no node of the Ray cluster that can run a worker is alive any more (the cluster lost its nodes)"
START_TRIES = 3  # workers that fail to start in a row before no other is started
STOP_SECONDS = 10  # for the workers running videos on this machine to clean up when the batch stops


class _Workers:
    """The actors of a batch: starting (building their network, or waiting for a node), idle, or running a job."""

    def __init__(self, ray, actor_class, spec: NetworkSpec):
        self.ray, self.actor_class, self.spec = ray, actor_class, spec
        self.starting: dict = {}  # the ref of its `ready` call -> the actor
        self.idle: list = []
        self.running: dict = {}  # the ref of its `run` call -> (the actor, the job, how many times its worker died)
        self.where: dict[int, object] = {}  # id of a started actor -> what its `ready` said: (node, process)

    def started(self, actor, where: object) -> None:
        self.where[id(actor)] = where
        self.idle.append(actor)

    def count(self) -> int:
        return len(self.starting) + len(self.idle) + len(self.running)

    def start(self) -> None:
        actor = self.actor_class.remote(self.spec)
        self.starting[actor.ready.remote()] = actor

    def stop_starting_past(self, held: int) -> None:
        """Let go of starting workers past the `held` the live nodes hold: one that Ray cannot place never starts."""
        for ref in list(self.starting)[:max(0, self.count() - held)]:
            self.ray.kill(self.starting.pop(ref))

    def stop_all(self) -> None:
        """Stop every worker. Those running a video on this machine get a SIGTERM first, and STOP_SECONDS to clean
        up: Ray's kill ends a process at once, and each left its frames folder, `xmempp-frames-*`, in the temporary
        folder (fifty-seventh hostile round). A worker on another machine is killed at once."""
        self._stop_gently_here()
        for actor in [*self.starting.values(), *self.idle, *(actor for actor, _, _ in self.running.values())]:
            self.ray.kill(actor)

    def _stop_gently_here(self) -> None:
        if not self.running:
            return
        try:
            here = self.ray.get_runtime_context().get_node_id()
        except Exception:  # no runtime to ask: none of them is reached gently
            return
        stopping = []
        for ref, (actor, _, _) in self.running.items():
            where = self.where.get(id(actor))
            if isinstance(where, tuple) and where[0] == here:
                with contextlib.suppress(OSError):  # Ray's worker ends its task with SystemExit on a SIGTERM
                    os.kill(where[1], signal.SIGTERM)
                    stopping.append(ref)
        if stopping:
            with contextlib.suppress(Exception):  # the cluster gone meanwhile: the kill below is all there is
                self.ray.wait(stopping, num_returns=len(stopping), timeout=STOP_SECONDS)


STOP_LOOK_SECONDS = 0.5  # how long a stop waits while Ray is waited on (`_HeldSignals`)


def _wait(ray, pending: list, wanted: int, seconds: float, deliver: Callable[[], None]) -> tuple[list, list]:
    """ray.wait for `wanted` of `pending` within `seconds`, in steps of STOP_LOOK_SECONDS with a signal noted
    meanwhile delivered between them."""
    deadline = time.monotonic() + seconds
    while True:
        step = max(0.0, min(STOP_LOOK_SECONDS, deadline - time.monotonic()))
        done, left = ray.wait(pending, num_returns=wanted, timeout=step)
        deliver()
        if len(done) >= wanted or time.monotonic() >= deadline:
            return done, left


def _pause(seconds: float, deliver: Callable[[], None]) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(STOP_LOOK_SECONDS, left))
        deliver()


def _dispatch(ray, actor_class, spec: NetworkSpec, function: VideoFunction, jobs: list, workers: int,
              workers_held: Callable[[], int], deliver: Callable[[], None] = lambda: None) -> Iterator:
    """Each job's (job, result) as workers finish them. A job goes only to a worker that has started; a worker that
    dies is replaced while the live nodes (`workers_held`) hold one more, and its job retried once. The cluster
    lost one of two nodes: the replacement, which no node could hold, got the retried video, and the batch waited
    for ever; it lost its only node: the videos left waited without a word (fifty-third and fifty-fifth hostile
    rounds). Where no live node can hold a worker for NODES_LOST_SECONDS, the videos left fail, saying so.
    `deliver`: hands a signal noted meanwhile to the command (`_HeldSignals`)."""
    actors = _Workers(ray, actor_class, spec)
    for _ in range(workers):
        actors.start()
    queue = deque((job, 0) for job in jobs)  # (job, how many times its worker died)
    nodes_lost_since, failed_starts, start_problems = None, 0, set()
    try:
        while queue or actors.running:
            deliver()  # one noted while the command took the last result
            while queue and actors.idle:
                actor = actors.idle.pop()
                job, deaths = queue.popleft()
                actors.running[actor.run.remote(function, job)] = (actor, job, deaths)
            pending = [*actors.running, *actors.starting]
            finished = _wait(ray, pending, 1, LOOK_SECONDS, deliver)[0] if pending else []
            if not finished:
                if not pending:
                    _pause(LOOK_SECONDS, deliver)
                held = workers_held()
                actors.stop_starting_past(held)
                if queue and not actors.starting and not actors.idle and actors.count() < min(workers, held):
                    actors.start()
                if held > 0:
                    nodes_lost_since = None
                elif nodes_lost_since is None:
                    nodes_lost_since = time.monotonic()
                    log.warning("no live node of the Ray cluster can run a worker now: the %d video(s) left fail in "
                                "%d s unless one joins", len(actors.running) + len(queue), NODES_LOST_SECONDS)
                elif time.monotonic() - nodes_lost_since >= NODES_LOST_SECONDS:
                    for job in [job for _, job, _ in actors.running.values()] + [job for job, _ in queue]:
                        yield job, JobFailure(NODES_LOST)
                    return
                continue
            (done,) = finished
            if done in actors.starting:
                actor = actors.starting.pop(done)
                try:
                    where = ray.get(done)
                except ray.exceptions.RayError as error:  # its network could not be built, or its node was lost
                    ray.kill(actor)
                    failed_starts += 1
                    why = _why_no_worker_started(error)
                    if why not in start_problems:  # said once: a node without the weights, beside nodes with them,
                        start_problems.add(why)  # showed only in Ray's tracebacks (fifty-seventh round)
                        log.warning("a worker could not start on the Ray cluster: %s", why)
                    if failed_starts < START_TRIES and actors.count() < min(workers, workers_held()):
                        actors.start()
                    elif not actors.count():
                        reason = f"no worker could start on the Ray cluster: {why}"
                        for job, _ in queue:
                            yield job, JobFailure(reason)
                        return
                    continue
                failed_starts = 0
                actors.started(actor, where)
                continue
            actor, job, deaths = actors.running.pop(done)
            try:
                result = ray.get(done)
            except ray.exceptions.RayError as error:  # the worker process died (crash, OOM kill, node lost)
                ray.kill(actor)
                if actors.count() < min(workers, workers_held()):
                    actors.start()
                if deaths == 0:
                    log.warning("the worker running %s died; retrying it once (%s)", getattr(job, "name", job),
                                " ".join(str(error).split())[:200])
                    queue.appendleft((job, 1))
                else:
                    yield job, JobFailure(f"its worker died twice ({type(error).__name__})")
                continue
            actors.idle.append(actor)
            yield job, result
    finally:
        actors.stop_all()
