"""Ray's processes and addresses: a killed driver leaves none of Ray's processes behind; an address that cannot be
joined fails soon, naming it, as a problem with the input (not a bug)."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.tiny_datasets import write_davis
from xmempp import XMemPPError
from xmempp.jobs import NetworkSpec

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]


def test_an_unreachable_ray_address_fails_within_30_seconds_naming_it(tmp_path, checkpoint):
    dataset = write_davis(tmp_path / "davis", {"v": 2})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "xmempp", "batch", "--dataset", str(dataset), "--output",
                           str(tmp_path / "out"), "--weights", str(checkpoint), "--device", "cpu", "--quiet",
                           "--ray", "127.0.0.1:1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 30
    assert done.returncode == 1 and "cannot reach the Ray cluster at 127.0.0.1:1" in done.stderr
    assert "bug" not in done.stderr


def test_a_cluster_that_refuses_the_connection_is_a_users_problem(monkeypatch, checkpoint):
    from xmempp import ray_runner
    from xmempp.ray_runner import run_on_ray

    def refuse(*args, **kwargs):
        raise ConnectionError("Failed to connect to Ray cluster at 10.1.2.3:6390")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray_runner, "_check_joinable", lambda *arguments: None)  # this process's own join refused
    with pytest.raises(XMemPPError, match="cannot join the Ray cluster at auto \\(Failed to connect to Ray cluster at "
                                          "10.1.2.3:6390\\); .* --ray auto finds it"):
        list(run_on_ray(["v"], lambda network, job: job, NetworkSpec(checkpoint), address="auto"))


def test_a_local_ray_is_started_whatever_ray_address_says(monkeypatch, checkpoint):
    """With RAY_ADDRESS left in the environment (a cluster long gone), `--ray` joined it rather than start a local
    Ray, and waited minutes with only Ray's log lines (forty-third hostile round)."""
    from xmempp import ray_runner

    asked = []

    def init(address=None, **options):
        asked.append(address)
        raise ConnectionError("stop here")

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray_runner, "_start_reaper", lambda: None)
    with pytest.raises(XMemPPError):
        list(ray_runner.run_on_ray(["v"], lambda network, job: job, NetworkSpec(checkpoint)))
    assert asked == ["local"]


def test_ray_auto_with_an_unreachable_ray_address_fails_soon_naming_it(monkeypatch, checkpoint):
    """`--ray auto` joins the cluster RAY_ADDRESS names: one gone was waited for minutes, unsaid (forty-third
    hostile round)."""
    from xmempp.ray_runner import run_on_ray

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    started = time.monotonic()
    with pytest.raises(XMemPPError, match=re.escape("cannot reach the Ray cluster at 127.0.0.1:1 (RAY_ADDRESS, "
                                                    "which --ray auto joins)")):
        list(run_on_ray(["v"], lambda network, job: job, NetworkSpec(checkpoint), address="auto"))
    assert time.monotonic() - started < 30


def test_a_local_ray_that_cannot_start_in_the_temporary_folder_names_it(monkeypatch, tmp_path, checkpoint):
    """A TMPDIR too long for Ray's sockets, or full, ended in "unexpected internal failure (OSError:
    validate_socket_filename failed ...); this is a bug" (forty-third hostile round)."""
    from xmempp import ray_runner

    def init(address=None, **options):
        raise OSError("validate_socket_filename failed: AF_UNIX path length cannot exceed 107 bytes: /t/ray/x")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray_runner, "_start_reaper", lambda: None)
    monkeypatch.setattr(ray_runner.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setenv("HOME", "/")  # in every path: it was blamed for every failure (forty-fifth hostile round)
    with pytest.raises(XMemPPError, match=re.escape("a local Ray could not start (validate_socket_filename failed: "
                                                    "AF_UNIX path length cannot exceed 107 bytes: /t/ray/x): Ray "
                                                    f"keeps its sockets, logs and objects in the temporary folder "
                                                    f"{tmp_path}")):
        list(ray_runner.run_on_ray(["v"], lambda network, job: job, NetworkSpec(checkpoint)))


def test_a_port_that_takes_connections_but_is_no_ray_head_fails_soon_naming_it(monkeypatch, checkpoint):
    """Something listening on the port, but no Ray head: xmempp's reachability check passed, and Ray retried for
    minutes with only its own log lines (forty-fourth hostile round)."""
    import socket

    from xmempp import ray_runner

    monkeypatch.setattr(ray_runner, "REACH_SECONDS", 1)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with socket.create_server(("127.0.0.1", 0)) as listener:  # takes connections, answers nothing
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(XMemPPError, match=re.escape(f"cannot join the Ray cluster at {address}: something takes "
                                                        "connections there, but no Ray head answers")):
            list(ray_runner.run_on_ray(["v"], lambda network, job: job, NetworkSpec(checkpoint), address=address))


def silent_grpc_server(listener) -> None:
    """Serve `listener` as a gRPC server that opens each connection (HTTP/2's SETTINGS) and then answers no call."""
    import threading

    held = []

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            connection.recv(1 << 16)
            connection.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # an empty SETTINGS frame, then silence
            held.append(connection)

    threading.Thread(target=serve, daemon=True).start()


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "RAY_USE_TLS"])
def test_an_address_that_opens_connections_but_answers_no_call_fails_within_a_minute_naming_it(
        monkeypatch, tmp_path, checkpoint, tls):
    """A port that answers HTTP/2's preface but no call (and with RAY_USE_TLS, which skips that check, anything at
    all): Ray retried for minutes, saying only its own log lines (forty-fifth hostile round)."""
    import socket

    from xmempp import ray_runner

    if tls:  # Ray reads its certificates only when it connects; any files do for a peer that never answers
        for name in ("RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY", "RAY_TLS_CA_CERT"):
            (tmp_path / name).write_text("not a certificate")
            monkeypatch.setenv(name, str(tmp_path / name))
        monkeypatch.setenv("RAY_USE_TLS", "1")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        silent_grpc_server(listener)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(XMemPPError, match=re.escape(f"cannot join the Ray cluster at {address}: ")) as refused:
            list(ray_runner.run_on_ray(["v"], lambda network, job: job, NetworkSpec(checkpoint), address=address))
    assert time.monotonic() - started < 60
    assert f"within {ray_runner.JOIN_SECONDS} s" in str(refused.value)


def test_a_ray_client_address_ray_cannot_join_is_said_naming_it(monkeypatch, checkpoint):
    """`--ray ray://HOST:PORT` without ray[client] installed ended in "unexpected internal failure (ValueError: Ray
    Client requires pip package `ray[client]` ...); this is a bug" (forty-fourth hostile round)."""
    from xmempp import ray_runner

    def init(address=None, **options):
        raise ValueError("Ray Client requires pip package `ray[client]`. If you installed the minimal Ray ...")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray_runner, "_check_reachable", lambda *arguments: None)
    with pytest.raises(XMemPPError, match=re.escape("cannot join the Ray cluster at ray://10.1.2.3:10001 (Ray Client "
                                                    "requires pip package `ray[client]`.")):
        list(ray_runner.run_on_ray(["v"], lambda network, job: job, NetworkSpec(checkpoint),
                                   address="ray://10.1.2.3:10001"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper reads /proc")
def test_a_killed_driver_leaves_none_of_rays_processes_running(tmp_path, checkpoint):
    from xmempp.ray_reaper import descendants, process_start, reap

    script = textwrap.dedent(f"""
        import time
        from xmempp.jobs import NetworkSpec
        from xmempp.ray_runner import run_on_ray

        def wait(network, job):
            time.sleep(600)

        for _ in run_on_ray(["v"], wait, NetworkSpec({str(checkpoint)!r}, "cpu"), workers=1):
            pass
    """)
    driver = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    seen: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not any(_title(pid).startswith("ray::VideoWorker") for pid in seen):
            time.sleep(1)
            seen.update(descendants(driver.pid))
        agents = [pid for pid in seen if _title(pid).startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent"))]
        assert agents, f"Ray's agents never started: {[_title(pid) for pid in seen]}"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(process_start(pid) == start for pid, start in seen.items()):
            time.sleep(1)
        left = [_title(pid) for pid, start in seen.items() if process_start(pid) == start]
        assert left == []
    finally:
        driver.kill()
        reap(seen)  # never leave this test's processes to the machine


def test_a_sigterm_to_a_batch_on_ray_stops_it_in_the_commands_words_not_rays_crash_dump(tmp_path, checkpoint):
    """ray.init set its own SIGTERM handlers: `kill` of `batch --ray` printed Ray's stack dump ("*** SIGTERM
    received at time=...") and exited 1, never through the command's clean-up and words (fifty-fifth round). The
    workers running videos were killed at once, and each left its frames folder in the temporary folder
    (fifty-seventh round, F2)."""
    import shutil
    import tempfile

    from xmempp.ray_reaper import descendants, reap

    dataset = write_davis(tmp_path / "davis", {"a": 200, "b": 200})
    temporary = Path(tempfile.mkdtemp(prefix="xr", dir="/tmp"))  # short: Ray's socket paths go in it
    driver = subprocess.Popen([sys.executable, "-m", "xmempp", "batch", "--dataset", str(dataset), "--output",
                               str(tmp_path / "out"), "--weights", str(checkpoint), "--size", "64", "--quiet",
                               "--ray"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(temporary)})
    seen: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not list(temporary.glob("xmempp-frames-*")):
            time.sleep(0.5)
            seen.update(descendants(driver.pid))
        assert list(temporary.glob("xmempp-frames-*")), "no worker started a video"
        time.sleep(2)  # into the video
        os.kill(driver.pid, signal.SIGTERM)
        _, stderr = driver.communicate(timeout=120)
        left = list(temporary.glob("xmempp-frames-*"))
    finally:
        driver.kill()
        reap(seen)
        shutil.rmtree(temporary, ignore_errors=True)
    assert driver.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "stopped by SIGTERM" in stderr and "SIGTERM received at time" not in stderr, stderr[-2000:]
    assert left == []


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.slow
def test_ray_auto_finding_a_dead_heads_address_fails_within_a_minute_naming_where_it_found_it(monkeypatch, tmp_path,
                                                                                               checkpoint):
    """`--ray auto` without RAY_ADDRESS joins the cluster Ray's file says was last started here; a head killed left
    that file, and the run waited minutes with only Ray's log lines (forty-sixth hostile round)."""
    from xmempp import ray_runner

    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:1")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(ray_runner.tempfile, "tempdir", None)  # read TMPDIR again
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    started = time.monotonic()
    with pytest.raises(XMemPPError, match=re.escape(f"{tmp_path / 'ray' / 'ray_current_cluster'}")) as refused:
        list(ray_runner.run_on_ray(["v"], lambda network, job: job, NetworkSpec(checkpoint), address="auto"))
    assert time.monotonic() - started < 60
    assert "bug" not in str(refused.value)


def test_a_head_asking_for_a_token_is_said_with_what_to_set(monkeypatch):
    """A head started by `ray start --head` (Ray 2.60) asks for a token: the join said "InvalidAuthToken" once a
    second, then xmempp blamed the address (forty-sixth hostile round)."""
    from xmempp import ray_runner

    def times_out(command, **options):
        raise subprocess.TimeoutExpired(command, 30, stderr=b"gcs_client.cc:210: Failed to get cluster ID from GCS "
                                                            b"server: Unauthenticated: RPC error: InvalidAuthToken")

    def gives_up(command, **options):  # what a real head's refusal looks like: Ray gives up after about 20 s
        return subprocess.CompletedProcess(command, 1, stderr=b"[W gcs_client.cc:210] Failed to get cluster ID from "
                                           b"GCS server: Unauthenticated: RPC error: InvalidAuthToken\nTraceback "
                                           b"...\nConnectionError: Failed to connect to Ray cluster at 10.1.2.3:6379")

    said = re.escape("cannot join the Ray cluster at 10.1.2.3:6379: its head asks for a token (`ray start --head` "
                     "turns token authentication on): set RAY_AUTH_MODE=token here")
    for join in (times_out, gives_up):
        monkeypatch.setattr(ray_runner.subprocess, "run", join)
        with pytest.raises(XMemPPError, match=said):
            ray_runner._check_joinable("10.1.2.3:6379")
    monkeypatch.setattr(ray_runner.subprocess, "run", lambda command, **options: (_ for _ in ()).throw(
        subprocess.TimeoutExpired(command, 30, stderr=b"")))
    monkeypatch.setenv("RAY_USE_TLS", "1")
    with pytest.raises(XMemPPError, match="RAY_USE_TLS is set here: does the head use TLS"):
        ray_runner._check_joinable("10.1.2.3:6379")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's parent-death signal")
def test_the_join_check_goes_with_a_driver_killed_with_sigkill(tmp_path):
    """The driver killed with SIGKILL during the join check left its child retrying the address for 14 minutes
    (forty-sixth hostile round)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as listener:
        silent_grpc_server(listener)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        driver = subprocess.Popen([sys.executable, "-c", "import sys; from xmempp import ray_runner; "
                                   "ray_runner._check_joinable(sys.argv[1])", address], cwd=ROOT)
        deadline = time.monotonic() + 20
        children = []
        while not children and time.monotonic() < deadline:
            children = subprocess.run(["pgrep", "-P", str(driver.pid)], capture_output=True, text=True).stdout.split()
            time.sleep(0.2)
        assert children, "the join check never started"
        time.sleep(2)  # the check is under way
        driver.kill()
        driver.wait()
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{children[0]}") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not os.path.exists(f"/proc/{children[0]}") or \
            Path(f"/proc/{children[0]}/stat").read_text().split()[2] == "Z"


def test_the_join_check_runs_whatever_the_folder_it_starts_from_holds(monkeypatch, tmp_path):
    """Started from a folder holding a random.py, the join check's child imported it (`python -c` puts the folder
    first on its path) and blamed the cluster: "cannot join ... (cannot import name 'Random' from 'random')"
    (forty-eighth hostile round)."""
    import socket

    from xmempp import ray_runner

    for module in ("random", "logging", "ctypes", "signal"):
        (tmp_path / f"{module}.py").write_text(f"raise ImportError('the user\\'s own {module}.py')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ray_runner, "JOIN_SECONDS", 5)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        silent_grpc_server(listener)
        with pytest.raises(XMemPPError, match="did not finish within 5 s"):
            ray_runner._check_joinable(f"127.0.0.1:{listener.getsockname()[1]}")


def _oldest_supported_python() -> str | None:
    """An interpreter of the oldest Python pyproject.toml allows (3.10), where this machine has one."""
    import glob
    import shutil

    candidates = [*sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python"))),
                  shutil.which("python3.10")]  # a pyenv shim may refuse to run: tried, not trusted
    for python in filter(None, candidates):
        if subprocess.run([python, "-c", "pass"], capture_output=True, timeout=60).returncode == 0:
            return python
    return None


def test_the_join_check_starts_on_the_oldest_python_the_project_supports(monkeypatch, tmp_path):
    """The check's child ran `python -P`, an option of Python 3.11: on 3.10 (which pyproject.toml allows) every
    address, a working head's included, was refused as "cannot join the Ray cluster at ... (Try `python -h' for
    more information.)" (forty-ninth hostile round). The child's own folder is still left off its path."""
    import socket

    from xmempp import ray_runner

    started = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda command, **options: started.append(command) or real_run(
        command, **options))
    monkeypatch.setattr(ray_runner, "JOIN_SECONDS", 5)
    python = _oldest_supported_python()
    if python is not None:
        monkeypatch.setattr(sys, "executable", python)
    (tmp_path / "logging.py").write_text("raise ImportError('the user\\'s own logging.py')\n")
    monkeypatch.chdir(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        silent_grpc_server(listener)
        with pytest.raises(XMemPPError) as refused:
            ray_runner._check_joinable(f"127.0.0.1:{listener.getsockname()[1]}")
    assert started[0][1] == "-c", started[0][:2]  # no option a supported Python lacks
    if python is not None:  # Ray is not installed for that Python: its child stops at `import ray`, not at -P
        assert "No module named 'ray'" in str(refused.value), refused.value
    else:
        assert "did not finish within 5 s" in str(refused.value)


def test_a_cluster_whose_nodes_cannot_import_xmempp_is_refused_naming_them_before_any_worker_starts(monkeypatch,
                                                                                                    caplog):
    """A node without xmempp, or with xmempp but not its packages (torch): Ray's worker tracebacks on the user's
    terminal, a retry that could not help, and "its worker died twice (ActorDiedError)" for every video (forty-ninth
    and fiftieth hostile rounds). Each node is asked first, by a probe that needs nothing of xmempp there, to import
    what a worker imports; a node that runs no task at all is named too, not waited for without end."""
    ray = pytest.importorskip("ray")
    from xmempp import ray_runner

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        ray_runner._refuse_nodes_without_xmempp(ray, ["xmempp.ray_runner", "xmempp.batch"])  # this node has them
        with pytest.raises(XMemPPError, match=r"^xmempp cannot be imported on the Ray node [\d.]+ \(No module named "
                                              r"'torch_as_on_a_node_without_it'\): every node of the cluster needs it"):
            ray_runner._refuse_nodes_without_xmempp(ray, ["xmempp.ray_runner", "torch_as_on_a_node_without_it"])
        real_get = ray.get

        def node_gone(reference, **options):  # a node listed alive whose raylet has just died
            raise ray.exceptions.RayError("the node is not schedulable (lease_id=abc)")

        monkeypatch.setattr(ray, "get", node_gone)
        with pytest.raises(XMemPPError, match=r"^xmempp cannot be imported on the Ray node [\d.]+ \(a worker there "
                                              r"died importing it: the node is not schedulable"):
            ray_runner._refuse_nodes_without_xmempp(ray, ["xmempp.ray_runner"])  # alive: its import crashes workers
        real_nodes, listed = ray.nodes, []

        def alive_then_dead():  # alive when asked, listed dead once its task failed
            listed.append(True)
            return real_nodes() if len(listed) == 1 else [{**node, "Alive": False} for node in real_nodes()]

        monkeypatch.setattr(ray, "nodes", alive_then_dead)
        with caplog.at_level(logging.WARNING, logger="xmempp.ray_runner"):
            ray_runner._refuse_nodes_without_xmempp(ray, ["xmempp.ray_runner"])  # gone: left out, not blamed
        assert "could not run a task (the node is not schedulable" in caplog.text
        monkeypatch.setattr(ray, "nodes", real_nodes)
        monkeypatch.setattr(ray, "get", real_get)
        monkeypatch.setattr(ray_runner, "PROBE_SECONDS", 0.5)
        monkeypatch.setattr(ray, "wait", lambda references, **options: ([], references))  # its workers never start
        with pytest.raises(XMemPPError, match=r"^the Ray node [\d.]+ did not run a task within 0.5 s: its worker "
                                              r"processes do not start"):
            ray_runner._refuse_nodes_without_xmempp(ray, ["xmempp.ray_runner"])
    finally:
        ray.shutdown()


class _FakeCluster:
    """What `_dispatch` asks of Ray, for a cluster whose nodes come and go as a test says: the first `placed`
    workers start (later ones are never placed: no node has room), and the worker named in `dies` dies running its
    first video."""

    class exceptions:  # noqa: N801 (as Ray names its module)
        class RayError(Exception):
            pass

    def __init__(self, placed: int, dies: int | None = None):
        self.placed, self.dies, self.made, self.killed = placed, dies, 0, []

    def actor_class(self):
        cluster = self

        class Method:
            def __init__(self, actor, name):
                self.actor, self.name = actor, name

            def remote(self, *args):
                return (self.name, self.actor.number, args[-1] if args else None)

        class Actor:
            def __init__(self, spec):
                cluster.made += 1
                self.number = cluster.made
                self.ready, self.run = Method(self, "ready"), Method(self, "run")

        return type("ActorClass", (), {"remote": staticmethod(Actor)})

    def wait(self, pending, num_returns, timeout):
        ready = sorted((ref for ref in pending if ref[0] == "run" or ref[1] <= self.placed),
                       key=lambda ref: ref[0] != "ready")  # workers start before any video is done
        return (ready[:1], [ref for ref in pending if ref not in ready[:1]])

    def get(self, ref):
        kind, number, job = ref
        if kind == "run" and number == self.dies:
            self.dies = None
            raise self.exceptions.RayError(f"the actor {number} died: its node was lost")
        return True if kind == "ready" else f"{job} done by worker {number}"

    def kill(self, actor):
        self.killed.append(actor.number)


def test_videos_left_when_the_cluster_loses_every_node_fail_saying_so_rather_than_wait(monkeypatch, caplog):
    """The cluster's only node died mid-batch (its raylet killed, the head's GCS alive): the retried workers had no
    node to start on, and the batch waited, silent, until killed (fifty-third hostile round). A wait that finds no
    live node able to hold a worker for NODES_LOST_SECONDS fails the videos left, naming why."""
    from xmempp import ray_runner
    from xmempp.jobs import JobFailure

    monkeypatch.setattr(ray_runner, "LOOK_SECONDS", 0)
    monkeypatch.setattr(ray_runner, "NODES_LOST_SECONDS", 0.2)
    cluster = _FakeCluster(placed=0)
    with caplog.at_level(logging.WARNING, logger="xmempp"):
        results = dict(ray_runner._dispatch(cluster, cluster.actor_class(), None, print, ["a", "b", "c"], 2,
                                            workers_held=lambda: 0))
    assert set(results) == {"a", "b", "c"}
    assert all(isinstance(result, JobFailure) and result.reason == ray_runner.NODES_LOST for result in results.values())
    assert "no live node of the Ray cluster can run a worker now: the 3 video(s) left fail in" in caplog.text


def test_a_video_whose_node_was_lost_is_retried_on_a_worker_that_runs_not_one_no_node_can_hold(monkeypatch):
    """Two nodes of one CPU, one lost while its worker ran video a: a's retry went to the replacement worker, which
    no node could hold, and the batch never ended (fifty-fifth hostile round). Videos go only to workers that have
    started, and a replacement that cannot start is let go."""
    from xmempp import ray_runner

    monkeypatch.setattr(ray_runner, "LOOK_SECONDS", 0)
    for held in (1, 2):  # the lost node already known, or not yet (a replacement is made, and never placed)
        cluster = _FakeCluster(placed=2, dies=2)
        results = dict(ray_runner._dispatch(cluster, cluster.actor_class(), None, print, ["a", "b", "c"], 2,
                                            workers_held=lambda held=held: held))
        assert results == {"a": "a done by worker 1", "b": "b done by worker 1", "c": "c done by worker 1"}
        assert cluster.made == held + 1 and sorted(cluster.killed) == list(range(1, held + 2))


def test_a_signal_while_ray_starts_reaches_the_commands_handler_once_it_has_started():
    """ray.init sets its own SIGTERM handler, and a signal that came while it forked was raised in logging's fork
    hook, "ignored": the batch ran on to exit 0, or ended 15 without a word (fifty-sixth hostile round). During the
    block a signal is noted and Ray's handlers are not set; after it, the command's handler gets the signal."""
    from xmempp.ray_runner import _HeldSignals

    class Stopped(BaseException):
        pass

    def stop(number, frame):
        raise Stopped(number)

    previous = signal.signal(signal.SIGHUP, stop)
    reached_the_end = False
    try:
        with pytest.raises(Stopped), _HeldSignals():
            signal.signal(signal.SIGHUP, lambda number, frame: sys.exit(number))  # as ray.init does for SIGTERM
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.2)  # noted, not raised in the middle of Ray's start
            reached_the_end = True
        assert reached_the_end and signal.getsignal(signal.SIGHUP) is stop
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_worker_that_cannot_start_beside_ones_that_can_is_warned_of_once(monkeypatch, caplog):
    """A node without the weights beside one with them: the batch finished, and only Ray's tracebacks showed that
    workers could not start there (fifty-seventh hostile round, F3). Each reason is warned of once, in xmempp's
    words."""
    from xmempp import ray_runner

    class Mixed(_FakeCluster):
        def get(self, ref):
            kind, number, _ = ref
            if kind == "ready" and number % 2 == 1 and number < 4:
                raise self.exceptions.RayError("\x1b[36mray::VideoWorker\x1b[0m\nxmempp.errors.InputNotFoundError: "
                                               "weights file not found: /w/x.pth")
            return super().get(ref)

    monkeypatch.setattr(ray_runner, "LOOK_SECONDS", 0)
    cluster = Mixed(placed=10)
    with caplog.at_level(logging.WARNING, logger="xmempp"):
        results = dict(ray_runner._dispatch(cluster, cluster.actor_class(), None, print, ["a", "b", "c"], 2,
                                            workers_held=lambda: 2))
    assert sorted(results) == ["a", "b", "c"] and all("done by worker" in result for result in results.values())
    warned = [record.getMessage() for record in caplog.records]
    assert warned == ["a worker could not start on the Ray cluster: weights file not found: /w/x.pth"], warned


SIGTERM_HANDLER_AFTER_RAY_STARTS = """
import ctypes, signal
import ray
from xmempp import ray_runner

class Sigaction(ctypes.Structure):
    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16), ("flags", ctypes.c_int),
                ("restorer", ctypes.c_void_p)]

def handler():
    action = Sigaction()
    ctypes.CDLL(None).sigaction(signal.SIGTERM, None, ctypes.byref(action))
    return action.handler

signal.signal(signal.SIGTERM, lambda number, frame: None)
before = handler()
ray_runner._connect(ray, None)
print("kept" if handler() == before else "replaced", flush=True)
ray.shutdown()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the C handler with Linux's sigaction")
def test_ray_starting_leaves_this_processes_sigterm_handler_as_it_was(tmp_path):
    """Ray's core set its crash handler for SIGTERM in the last moments of ray.init: a SIGTERM then printed Ray's
    crash dump and aborted the batch, exit 134 (fifty-eighth hostile round, F1)."""
    import tempfile

    temporary = tempfile.mkdtemp(prefix="xr", dir="/tmp")  # short: Ray's socket paths go in it
    try:
        done = subprocess.run([sys.executable, "-c", SIGTERM_HANDLER_AFTER_RAY_STARTS], cwd=ROOT, capture_output=True,
                              text=True, timeout=180, env={**os.environ, "TMPDIR": temporary})
    finally:
        subprocess.run(["rm", "-rf", temporary])
    assert done.stdout.strip() == "kept", done.stderr[-2000:]


@pytest.mark.parametrize(("address", "said"), [("127.0.0.1:\u00b2", "a port from 1 to 65535"),
                                               ("127.0.0.1:70000", "a port from 1 to 65535"),
                                               ("a..b:6379", "its host name is not valid"),
                                               ("x" * 64 + ".example:6379", "its host name is not valid")])
def test_an_address_no_system_can_connect_to_is_said_in_words(address, said):
    """A port of Unicode digits (`²`) and a host name with an empty or over-long part ended in "unexpected internal
    failure (ValueError / UnicodeError ...); this is a bug" (fifty-ninth hostile round, F1 and F2)."""
    from xmempp.ray_runner import _check_reachable

    with pytest.raises(XMemPPError, match=re.escape(said)):
        _check_reachable(address)


@pytest.mark.parametrize(("address", "said"), [
    ("::1:6379", "write an IPv6 address in brackets, as [::1]:6379"),
    ("http://127.0.0.1:6379", "ray://HOST:PORT or auto, a port from 1 to 65535; http:// is not one of them"),
    ("name.invalid:6379", "its host name 'name.invalid' cannot be looked up ("),
    ("ray:/127.0.0.1:10001", "ray:// takes two slashes"), ("127.0.0.1:6379:1", "a port from 1 to 65535"),
    (":6379", "it names no host"), ("ray://", "it names no host"), ("[]:6379", "it names no host"),
    ("ray.invalid:6379", "its host name 'ray.invalid' cannot be looked up")])
def test_an_address_ray_cannot_take_or_no_name_service_knows_is_said_as_such(address, said):
    """An unbracketed IPv6 address, another scheme than ray://, and a host name that does not resolve were each
    "cannot reach ... (Name or service not known within 10 s)": a time-out where the look-up answered at once
    (sixtieth hostile round, api F2, F3); a typo of ray:// and an extra colon were told to bracket an IPv6
    address, and no host at all was looked up as one (sixty-first, api F2, F3)."""
    from xmempp.ray_runner import _check_reachable

    with pytest.raises(XMemPPError, match=re.escape(said)) as refused:
        _check_reachable(address)
    assert "within" not in str(refused.value)


def test_an_ipv6_head_is_reached_at_the_address_ray_writes_for_it():
    """`[::1]:PORT`, as Ray itself writes an IPv6 head's address, was looked up with its brackets and refused as
    unreachable (sixtieth hostile round, api F2): here it reaches the port, which answers no gRPC."""
    import socket

    from xmempp.ray_runner import _check_reachable

    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with listener:
        address = f"[::1]:{listener.getsockname()[1]}"
        with pytest.raises(XMemPPError, match=re.escape(f"cannot join the Ray cluster at {address}: something "
                                                        "takes connections there")):
            _check_reachable(address)


@pytest.mark.parametrize(("given", "said"), [(["--ray", ""], "the address is empty"),
                                             (["--ray", " "], "the address is empty"),
                                             (["--ray", "local"], None), (["--ray"], None)])
def test_an_empty_ray_address_is_refused_and_ray_s_word_local_is_a_local_ray(given, said, capsys):
    """`--ray "$HEAD"` with HEAD unset started a local Ray unsaid, and `--ray local` (Ray's own word for one) was
    looked up as a host (sixtieth hostile round, api F3, F4)."""
    from xmempp.cli import build_parser

    if said is None:
        assert build_parser().parse_args(["batch", "--dataset", "d", "--output", "o", *given]).ray == ""
        return
    with pytest.raises(SystemExit):
        build_parser().parse_args(["batch", "--dataset", "d", "--output", "o", *given])
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("ray_core", ["wraps the stop", "loses the stop"])
def test_a_signal_while_ray_waits_stops_the_batch_between_rays_calls(monkeypatch, ray_core):
    """A SIGTERM while the driver waited on Ray (the nodes' probe, a video) was raised inside Ray's core, which
    returned it wrapped in a SystemError ("unexpected internal failure ... this is a bug", exit 1) or lost it: the
    batch ran on to exit 0 (fifty-seventh hostile round, F1). It is noted, and the command's handler gets it once
    Ray's wait returns, within STOP_LOOK_SECONDS."""
    from xmempp import ray_runner

    class Stopped(BaseException):
        pass

    def stop(number, frame):
        raise Stopped(number)

    class Core(_FakeCluster):
        def wait(self, pending, num_returns, timeout):
            try:  # as Ray's check_signals runs the handler while its core waits
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(0.05)
            except BaseException as error:
                if ray_core == "wraps the stop":
                    raise SystemError("<cyfunction CoreWorker.wait> returned a result with an exception set") from error
            return [], list(pending)

    monkeypatch.setattr(ray_runner, "LOOK_SECONDS", 0)
    previous = signal.signal(signal.SIGHUP, stop)
    try:
        cluster = Core(placed=1)
        with pytest.raises(Stopped), ray_runner._HeldSignals() as signals:
            list(ray_runner._dispatch(cluster, cluster.actor_class(), None, print, ["a", "b"], 1,
                                      workers_held=lambda: 1, deliver=signals.deliver))
        assert signal.getsignal(signal.SIGHUP) is stop
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_worker_that_cannot_start_is_said_in_xmempps_words_without_rays_colours():
    """Weights only the driver has: each video failed "no worker could start on the Ray cluster (The actor died
    because of an error raised in its creation task, \\x1b[36mray::VideoWorker...", colour codes in summary.csv,
    the cause only in the worker's traceback (fifty-sixth hostile round)."""
    from xmempp.ray_runner import _why_no_worker_started

    error = RuntimeError("The actor died because of an error raised in its creation task, \x1b[36mray::VideoWorker."
                         "__init__()\x1b[39m (pid=1, ip=192.0.2.2)\nTraceback (most recent call last):\n  File "
                         "\"x.py\", line 1\nxmempp.errors.InputNotFoundError: weights file not found: /w/x.pth")
    assert _why_no_worker_started(error) == "weights file not found: /w/x.pth"
    assert _why_no_worker_started(RuntimeError("The actor died \x1b[36munexpectedly\x1b[39m\nmore")) == \
        "The actor died unexpectedly"
