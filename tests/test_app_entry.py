"""app.py: flags, and starting without weights (the app still starts; the status says what is missing)."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import app
from demo.work_root import remove_unfinished_starts
from xmempp.errors import XMemPPError
from xmempp.model.weights import missing_weights_message

SESSION = "session-abcd1234"  # a session's folder, as mkdtemp names it


@pytest.fixture(autouse=True)
def roots_never_changed_lately(monkeypatch):
    """The roots these tests make have just changed: the start-up clean-up leaves such a root (a running server's,
    made again), so here every root counts as old but in the test of that rule."""
    import demo.work_root

    monkeypatch.setattr(demo.work_root, "RECENT_S", 0.0)

def test_flags_default_to_the_documented_limits():
    args = app.parse_args([])
    assert (args.max_frames, args.max_side, args.max_upload_mb, args.size) == (300, 1280, 200, 480)
    assert args.weights is None and args.device is None and not args.share
    assert (args.max_runs, args.max_waiting) == (1, 16) and args.speed_check  # the start-up speed check is on


def test_non_positive_limits_are_refused():
    with pytest.raises(SystemExit):
        app.parse_args(["--max-frames", "0"])
    with pytest.raises(SystemExit):
        app.parse_args(["--max-waiting", "0"])


@pytest.mark.parametrize("given", ["5", "0.5", "200"])
def test_an_upload_limit_given_on_the_command_line_reaches_gradio_as_bytes(given):
    """`--max-upload-mb 5` reached Gradio's launch as "5.0mb", which stopped the app at start ("Invalid file size
    unit: .0MB"); only the default 200 worked."""
    from gradio.utils import _parse_file_size

    limit = app.parse_args(["--max-upload-mb", given]).max_upload_mb
    assert _parse_file_size(app.upload_limit_bytes(limit)) == int(float(given) * 2**20)


def test_mcp_is_off_unless_asked_for_and_without_its_extra_names_the_install(monkeypatch, capsys):
    assert not app.parse_args([]).mcp
    monkeypatch.setattr(app.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit):
        app.parse_args(["--mcp"])
    assert "pip install 'gradio[mcp]==6.31.0'" in capsys.readouterr().err


def test_offline_without_weights_gives_no_network_and_the_message(monkeypatch):
    monkeypatch.setattr(app, "find_weights", lambda weights: None)
    monkeypatch.setenv("XMEMPP_OFFLINE", "1")
    assert app.load_shared_network(None, "cpu") == (None, missing_weights_message())


def test_a_failed_download_still_starts_the_app(monkeypatch):
    def fail() -> None:
        raise XMemPPError("could not download the XMem weights")

    monkeypatch.setattr(app, "find_weights", lambda weights: None)
    monkeypatch.setattr(app, "ensure_weights", fail)
    monkeypatch.delenv("XMEMPP_OFFLINE", raising=False)
    assert app.load_shared_network(None, "cpu") == (None, missing_weights_message())


def test_the_weights_message_names_the_download_command():
    assert "python -m xmempp download-weights" in missing_weights_message()


def test_an_offline_start_decides_within_2_seconds(monkeypatch, tmp_path):
    """A network that swallows connections (3 s each, then an error) costs at most 2 s, told or not that it is offline."""
    import huggingface_hub.constants
    from transformers import Sam2Model, Sam2Processor  # noqa: F401  (imported here: its import time is no waiting)

    from demo.clicks import NO_WEIGHTS

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # put back after the test
    def black_hole(address, timeout=None, *args, **kwargs):
        time.sleep(3)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", black_hole)
    monkeypatch.setattr(app, "find_weights", lambda weights: None)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    for name in ("XMEMPP_SAM_MODEL", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the start sets it to 1: put back after the test
    args = app.parse_args([])

    def start(offline: bool) -> tuple[float, tuple]:
        if offline:
            monkeypatch.setenv("XMEMPP_OFFLINE", "1")
        else:
            monkeypatch.delenv("XMEMPP_OFFLINE", raising=False)
        started = time.perf_counter()
        models = app.load_models(args)
        return time.perf_counter() - started, models

    told, told_models = start(offline=True)
    found, found_models = start(offline=False)
    assert found_models == told_models == (None, missing_weights_message(), None, NO_WEIGHTS)
    assert told <= 2.0 and found <= 2.0


def test_the_ui_builds_without_weights(tmp_path):
    from demo.media import Limits
    from demo.state import AppSettings
    from demo.ui import build_demo

    settings = AppSettings(network=None, limits=Limits(), work_root=tmp_path, example=app.EXAMPLE,
                           weights_message=missing_weights_message())
    blocks = build_demo(settings)
    ids = {block.elem_id for block in blocks.blocks.values()}
    assert {"upload", "example", "frame", "editor", "object", "save-annotation", "references", "propagate", "k",
            "suggestions", "export", "download", "status"} <= ids
    assert app.EXAMPLE.is_file() and app.EXAMPLE.stat().st_size < 500_000


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_work_roots_of_servers_no_longer_running_are_removed(tmp_path):
    dead = tmp_path / f"xmempp-app-{_dead_pid()}-abc12345"
    (dead / SESSION).mkdir(parents=True)
    ours = tmp_path / f"xmempp-app-{os.getpid()}-def12345"
    unnamed = tmp_path / "xmempp-app-old"
    for folder in (ours, unnamed):
        folder.mkdir()
    import fcntl

    held = os.open(ours, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX)  # as this server holds its own
    try:
        assert app.remove_stale_work_roots(tmp_path) == [dead]
    finally:
        os.close(held)
    assert not dead.exists() and ours.is_dir() and unnamed.is_dir()


@pytest.mark.parametrize("pid", [1, os.getpid(), os.getppid()], ids=["pid 1", "this process", "a living process"])
def test_a_killed_servers_work_root_is_removed_whatever_process_has_its_pid_here(tmp_path, pid):
    """A server that ran as pid 1 of a PID namespace (a container's usual layout) and was killed left its work root
    for good: a start in another namespace is pid 1 itself and took the root for its own, and a start on the host
    saw init alive (thirtieth hostile round). Its free lock proves its server gone: the kernel let go of it."""
    root = tmp_path / f"xmempp-app-{pid}-killed_1"
    (root / SESSION).mkdir(parents=True)
    assert app.remove_stale_work_roots(tmp_path) == [root]
    assert not root.exists()


def test_a_work_root_whose_server_holds_its_lock_is_kept_whatever_its_pid(tmp_path):
    """A server in another PID namespace (a container sharing TMPDIR) has a pid this one cannot see: its running
    work root was removed as a dead server's, its visitors' frames and masks with it (twenty-eighth hostile round).
    A running server holds its work root's lock; the kernel lets go of it when the server ends, killed or not."""
    root = tmp_path / f"xmempp-app-{_dead_pid()}-elsewher"
    (root / SESSION).mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys; held = os.open(sys.argv[1], os.O_RDONLY); "
                               "fcntl.flock(held, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
                               str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert app.remove_stale_work_roots(tmp_path) == []
        assert (root / SESSION).is_dir()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert app.remove_stale_work_roots(tmp_path) == [root]  # its server gone: removed at the next start


def test_a_new_work_root_is_held_by_its_server(tmp_path, monkeypatch):
    import atexit
    import fcntl

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    monkeypatch.setattr(signal, "signal", lambda *arguments: None)
    work_root = app.make_work_root()
    assert work_root.parent == tmp_path and work_root.name.startswith(f"xmempp-app-{os.getpid()}-")
    assert [path.name for path in tmp_path.iterdir()] == [work_root.name]  # no hidden folder it was made under
    other = os.open(work_root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)


def test_a_work_root_named_with_a_number_no_process_can_have_is_stale_and_other_digits_are_no_pid(tmp_path):
    """A folder xmempp-app-<30 digits>-x in TMPDIR stopped the server from starting (OverflowError from os.kill,
    twenty-third hostile round); superscript digits pass str.isdigit but are no number."""
    huge = tmp_path / f"xmempp-app-{'9' * 30}-x1234567"
    superscript = tmp_path / "xmempp-app-\u00b2-x"
    huge.mkdir()
    superscript.mkdir()
    assert app.remove_stale_work_roots(tmp_path) == [huge]
    assert superscript.is_dir()


@pytest.mark.parametrize("mounted", ["", "session-abcd1234"])
def test_a_dead_servers_work_root_that_is_or_holds_a_mount_point_is_left_whole(tmp_path, monkeypatch, mounted):
    """A user's folder bind-mounted at xmempp-app-<dead pid>-x was emptied by the start-up clean-up (rmtree crosses
    mounts), and the log said it was removed (twenty-fourth hostile round)."""
    root = tmp_path / f"xmempp-app-{_dead_pid()}-x1234567"
    (root / SESSION).mkdir(parents=True)
    (root / SESSION / "keep.txt").write_text("mine")
    import demo.work_root

    monkeypatch.setattr(demo.work_root, "mount_points", lambda: {os.path.realpath(root / mounted).rstrip(os.sep)})
    assert app.remove_stale_work_roots(tmp_path) == []
    assert (root / SESSION / "keep.txt").read_text() == "mine"


def test_a_link_or_file_named_like_a_dead_servers_work_root_is_left_and_not_said_removed(tmp_path):
    """Such a link was logged as "removed ..., left by a server that is no longer running" though nothing was
    removed (twenty-third hostile round)."""
    users = tmp_path / "users"
    users.mkdir()
    link, file = tmp_path / f"xmempp-app-{_dead_pid()}-link", tmp_path / f"xmempp-app-{_dead_pid()}-file1234"
    link.symlink_to(users, target_is_directory=True)
    file.write_text("mine")
    assert app.remove_stale_work_roots(tmp_path) == []
    assert link.is_symlink() and users.is_dir() and file.read_text() == "mine"


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_server_deletes_its_work_root(tmp_path, checkpoint, stop):
    """SIGHUP (its terminal closed) ended the server by the signal's default action, its work root left with the
    visitors' files until a later start (sixty-second hostile round, F3)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp_path), "XMEMPP_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, str(Path(app.__file__)), "--weights", str(checkpoint), "--device", "cpu"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("xmempp-app-*")) and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
        assert list(tmp_path.glob(f"xmempp-app-{server.pid}-*")), "the server made no work root"
        server.send_signal(stop)
        # Ended by its own handler (which runs the clean-up), not by the signal's default action (-SIGTERM).
        assert server.wait(timeout=60) == 0
    finally:
        server.kill()
    assert not list(tmp_path.glob("xmempp-app-*"))


def test_visitors_uploads_go_into_the_work_root(tmp_path, monkeypatch):
    import gradio.utils

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "elsewhere"))  # restored after the test
    work_root = tmp_path / "xmempp-app-1-abc"
    work_root.mkdir()
    folder = app.use_upload_folder(work_root)
    assert Path(gradio.utils.get_upload_folder()) == folder and folder.parent == work_root


@pytest.mark.slow
def test_a_killed_servers_uploads_are_removed_with_its_work_root_at_the_next_start(tmp_path, checkpoint):
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp_path), "XMEMPP_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("GRADIO_TEMP_DIR", None)
    server = subprocess.Popen([sys.executable, str(Path(app.__file__)), "--weights", str(checkpoint), "--device",
                               "cpu", "--sam-model", "none", "--no-speed-check"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        reply = httpx.post(f"http://127.0.0.1:{port}/gradio_api/upload",
                           files={"files": ("visitor-upload.mp4", b"not really a video")}, timeout=30)
        uploaded = Path(reply.json()[0])
        assert uploaded.read_bytes() == b"not really a video"
    finally:
        server.kill()  # no clean-up of its own
        server.wait(timeout=30)
    work_roots = list(tmp_path.glob(f"xmempp-app-{server.pid}-*"))
    assert work_roots and uploaded.is_relative_to(work_roots[0])
    assert app.remove_stale_work_roots(tmp_path) == work_roots  # what the next server does first
    assert not uploaded.exists()


def test_a_web_server_that_runs_out_of_open_files_says_so_in_words(tmp_path, monkeypatch):
    """Under `ulimit -n 20` Gradio's launch failed after "Running on local URL" with a traceback ending in
    OSError: [Errno 24] Too many open files (twenty-third hostile round)."""
    class Blocks:
        def queue(self, **options):
            pass

        def launch(self, **options):
            raise OSError(errno.EMFILE, "Too many open files")

    _started_quietly(monkeypatch, tmp_path)
    monkeypatch.setattr(app, "build_demo", lambda settings, runs: Blocks())
    with pytest.raises(SystemExit, match=r"^error: the web server stopped: too many open files; raise the limit "
                                         r"\(ulimit -n\)$"):
        app.main(["--no-speed-check", "--sam-model", "none"])


def test_an_app_that_runs_out_of_open_files_while_it_is_built_says_so_in_words(tmp_path, monkeypatch):
    """Under `ulimit -n 16` Gradio failed earlier, while the page was built, with the same traceback (twenty-fourth
    hostile round)."""
    def build(settings, runs):
        raise OSError(errno.EMFILE, "Too many open files")

    _started_quietly(monkeypatch, tmp_path)
    monkeypatch.setattr(app, "build_demo", build)
    with pytest.raises(SystemExit, match=r"^error: the web server stopped: too many open files"):
        app.main(["--no-speed-check", "--sam-model", "none"])


def _started_quietly(monkeypatch, work_root: Path) -> None:
    """app.main without weights, with `work_root` as its work root, and none of its hold on this process: no
    SIGTERM handler, no watcher."""
    monkeypatch.setattr(app, "load_models", lambda args: (None, "no weights", None, ""))
    monkeypatch.setattr(app, "make_work_root", lambda: work_root)
    monkeypatch.setattr(app, "use_upload_folder", lambda folder: folder)
    monkeypatch.setattr(signal, "signal", lambda *arguments: None)
    monkeypatch.setattr(app.WorkRoot, "watch", lambda self, every_s=1.0: None)


def test_a_server_stopped_while_it_starts_says_so_without_a_traceback(tmp_path, monkeypatch, caplog):
    """SIGTERM while Gradio's launch ran its start-up check ended in a KeyboardInterrupt traceback in the log
    (thirty-seventh hostile round)."""
    class Blocks:
        def queue(self, **options):
            pass

        def launch(self, **options):
            raise KeyboardInterrupt  # what the SIGTERM handler raises

    _started_quietly(monkeypatch, tmp_path)
    monkeypatch.setattr(app, "build_demo", lambda settings, runs: Blocks())
    caplog.set_level("INFO", logger="xmempp.app")
    app.main(["--no-speed-check", "--sam-model", "none"])
    assert "stopped while starting" in caplog.text


def test_a_dead_servers_work_root_nested_past_the_recursion_limit_is_removed_and_the_app_starts(tmp_path):
    """A tree 1,000 folders deep in xmempp-app-<dead pid>-d made rmtree raise RecursionError: every start of the app
    stopped with a traceback (twenty-fourth hostile round). It is left no more: the removal does not recurse."""
    root = tmp_path / f"xmempp-app-{_dead_pid()}-d1234567"
    levels = [root, root / SESSION, root / SESSION / "video-1"]
    for _ in range(sys.getrecursionlimit() + 50):
        levels.append(levels[-1] / "a")
    for level in levels:  # one by one: os.makedirs and pytest's own clean-up recurse as well
        level.mkdir()
    assert app.remove_stale_work_roots(tmp_path) == [levels[0]]
    assert not os.path.lexists(levels[0])


def test_a_read_only_server_folder_is_not_named_to_a_visitor(tmp_path):
    """On a read-only work root Export and Propagate said "the server cannot use its file out": the name of a
    folder of the server's, as if a file (thirty-second hostile round)."""
    import errno

    from demo.feedback import message_for

    folder = tmp_path / "out"
    folder.mkdir()
    message = message_for(OSError(errno.EROFS, "Read-only file system", str(folder)))
    assert message.startswith("⚠ the server cannot use its files (the file system is read-only)"), message
    assert "out" not in message.split(";")[0].replace("cannot", "")
    message = message_for(OSError(errno.EROFS, "Read-only file system", str(folder / "masks.zip")))
    assert message.startswith("⚠ the server cannot use its file masks.zip (the file system is read-only)"), message


def test_a_second_stop_while_the_server_closes_is_not_an_error(monkeypatch):
    """A second SIGTERM while the server closed (`timeout` passing one on) raised in the middle of the closing, and
    the log ended in a traceback."""
    import signal

    monkeypatch.setattr(signal, "signal", lambda signum, handler: handlers.update({signum: handler}))
    handlers = {}
    with pytest.raises(KeyboardInterrupt):
        app._interrupt(signal.SIGTERM, None)
    assert handlers == {signal.SIGTERM: signal.SIG_IGN, signal.SIGHUP: signal.SIG_IGN}


@pytest.mark.parametrize("missed_by", ["a session", "the watcher"])
def test_a_work_root_removed_while_its_server_runs_is_made_again_held_and_so_kept_by_the_next_server(
        tmp_path, monkeypatch, missed_by):
    """A work root removed while its server ran (a cleaner of temporary files) was made again by the next session
    or upload, unlocked: the next server started on the same TMPDIR removed it as a dead server's, with the
    visitors' files made since, and logged that a running server was "no longer running" (thirty-sixth hostile
    round)."""
    import atexit
    import shutil

    from demo.work_root import WorkRoot

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    app.hold_for_life(root)
    held = WorkRoot(root)
    shutil.rmtree(root)
    if missed_by == "the watcher":  # before Gradio's next upload makes it, unheld
        held.watch(every_s=0.05)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (root.is_dir() and _is_locked(root)):
            time.sleep(0.05)
        (root / "uploads").mkdir(exist_ok=True)  # Gradio's next upload (the watcher may have made it first)
    (Path(tempfile.mkdtemp(prefix="session-", dir=held.folder())) / "mask.png").write_bytes(b"an annotation")
    assert _is_locked(root)
    assert app.remove_stale_work_roots(tmp_path) == []
    (session,) = root.glob("session-*")
    assert (session / "mask.png").read_bytes() == b"an annotation"


@pytest.mark.parametrize("put", ["a link to a user's folder", "a user's folder renamed there",
                                 "a user's folder of names the server makes"])
def test_a_work_root_replaced_by_what_is_not_the_servers_takes_no_work_and_is_never_removed(tmp_path, monkeypatch,
                                                                                            caplog, put):
    """The folder the server held replaced by a link to a user's folder: API calls wrote through it and the clean-up
    of old calls removed the user's folders; a user's folder renamed onto a removed root's path was held as the
    root and removed whole when the server exited (thirty-seventh hostile round)."""
    import atexit
    import shutil

    from demo.work_root import WorkRoot
    from xmempp.errors import XMemPPError

    registered = []
    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: registered.append(arguments))
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    app.hold_for_life(root)
    held = WorkRoot(root)
    shutil.rmtree(root)
    users = tmp_path / "users"
    (users / "api" / "call-old").mkdir(parents=True)
    if put == "a user's folder of names the server makes":  # taken for one Gradio's upload made again (round 38)
        (users / "uploads" / "photos").mkdir(parents=True)
        (users / "session-notes.txt").write_text("mine")
    else:
        (users / "thesis.txt").write_text("mine")
    if put == "a link to a user's folder":
        root.symlink_to(users, target_is_directory=True)
    else:
        users.rename(root)
    with pytest.raises(XMemPPError, match="the server's work folder was replaced while it ran"):
        held.folder()
    assert "nothing is written there" in caplog.text
    held.remove()  # at exit
    mine = users if put == "a link to a user's folder" else root
    kept = mine / ("session-notes.txt" if put == "a user's folder of names the server makes" else "thesis.txt")
    assert kept.read_text() == "mine" and (mine / "api" / "call-old").is_dir()
    if put != "a user's folder of names the server makes":  # named like a root, holding only a root's names: a
        assert app.remove_stale_work_roots(tmp_path) == []  # start takes it for a dead server's, by design
    assert kept.read_text() == "mine"


@pytest.mark.parametrize("put", ["moved into the root", "renamed onto uploads/", "moved into uploads/", "none"])
def test_at_exit_the_server_removes_what_it_made_in_its_root_and_leaves_a_users_folder_put_there(
        tmp_path, monkeypatch, caplog, put):
    """A user's folder moved into the running server's root (`mv mine ROOT` once the watcher had made ROOT again)
    or renamed onto its uploads/ was removed with the root at exit, unsaid (thirty-ninth hostile round)."""
    import atexit

    from demo.work_root import WorkRoot

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    held = WorkRoot(root)
    for name in ("uploads", "session-abc", "api"):
        (root / name).mkdir()
        (root / name / "made.txt").write_text("the server's")
        held.own(root / name)
    (root / "uploads" / "made.txt").unlink()  # Gradio's upload cache: folders named by a SHA-256, of files
    (root / "uploads" / ("5" * 64)).mkdir()
    (root / "uploads" / ("5" * 64) / "clip.mp4").write_text("a visitor's upload")
    (root / "uploads" / "tmpab12cd34").write_text("")  # a file Gradio received an upload into
    users = tmp_path / "users"
    (users / "photos").mkdir(parents=True)
    (users / "photos" / "a.txt").write_text("mine")
    mine = {"moved into the root": root / "mine", "renamed onto uploads/": root / "uploads",
            "moved into uploads/": root / "uploads" / "mine", "none": None}[put]
    if put == "renamed onto uploads/":
        (root / "uploads").rename(tmp_path / "servers-uploads")
    if mine is not None:
        users.rename(mine)
    held.remove()
    if mine is None:
        assert not root.exists()
    elif put == "moved into uploads/":  # it went with uploads/, unsaid (sixty-first hostile round, F1)
        assert os.listdir(root) == ["uploads"] and os.listdir(root / "uploads") == ["mine"]
        assert (mine / "photos" / "a.txt").read_text() == "mine"
        assert f"left the uploads folder {root / 'uploads'}: it holds 'mine', which no upload made there" in caplog.text
    else:
        assert os.listdir(root) == [mine.name] and (mine / "photos" / "a.txt").read_text() == "mine"
        assert f"left the work root {root}: it holds {mine.name!r}, which this server did not make" in caplog.text


SHA = "0123abcd" * 8  # a folder name of Gradio's upload cache: the SHA-256 of an upload


@pytest.mark.parametrize("made_by", ["the watcher", "a visitor's upload, since", "a user, long before",
                                     "a user, just now", "a user, just now, a file named like Gradio's"])
def test_an_uploads_folder_made_again_is_the_servers_own_unless_a_user_made_it(tmp_path, monkeypatch, made_by):
    """uploads/ removed while the server ran: made again by the watcher, or by Gradio's next upload in the moment
    before, it is the server's, and goes at exit; a user's folder renamed there is left, its files old or written
    in the moment before (taken for Gradio's by their times alone, it went at exit: fortieth hostile round)."""
    import atexit
    import shutil

    from demo.work_root import WorkRoot

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    (root / "uploads").mkdir(parents=True)
    held = WorkRoot(root)
    held.own(root / "uploads")
    held._keep_uploads()
    users = tmp_path / "users"
    (users / "photos").mkdir(parents=True)  # made while the server's uploads/ was there: another folder
    (users / "photos" / "a.jpg").write_text("mine")
    if made_by == "a user, long before":
        old = time.time() - 3600
        for path in (users / "photos" / "a.jpg", users / "photos", users):
            os.utime(path, (old, old))
    shutil.rmtree(root / "uploads")
    if made_by == "a visitor's upload, since":
        (root / "uploads" / SHA).mkdir(parents=True)
        (root / "uploads" / SHA / "clip.mp4").write_text("an upload")
    elif made_by.startswith("a user"):
        if made_by.endswith("named like Gradio's"):  # tmp + 8: a file Gradio receives an upload into
            shutil.rmtree(users / "photos")
            (users / "tmp_results").write_text("mine")
        users.rename(root / "uploads")
    held._keep_uploads()
    assert (root / "uploads").is_dir()
    held.remove()
    assert os.path.exists(root) == made_by.startswith("a user")


@pytest.mark.parametrize("renamed_onto", ["uploads", "api", SESSION])
def test_a_killed_servers_root_holding_a_users_folder_at_uploads_or_api_is_left_at_the_next_start(tmp_path,
                                                                                                 renamed_onto):
    """A user's folder renamed onto a running server's uploads/ (or api/, or named as a session's), then the server
    killed, or left at exit for it: the next start removed the root with it, its name being a server's (fortieth
    and forty-first hostile rounds)."""
    root = tmp_path / f"xmempp-app-{_dead_pid()}-killed_1"
    (root / "uploads" / SHA).mkdir(parents=True)
    (root / "api" / "call-ab_12cde").mkdir(parents=True)
    (root / SESSION / "video-1").mkdir(parents=True)
    shutil.rmtree(root / renamed_onto)
    (root / renamed_onto / "photos").mkdir(parents=True)
    (root / renamed_onto / "photos" / "a.jpg").write_text("mine")
    old = time.time() - 120
    for path in (*root.rglob("*"), root):
        os.utime(path, (old, old))
    assert app.remove_stale_work_roots(tmp_path) == []
    assert (root / renamed_onto / "photos" / "a.jpg").read_text() == "mine"
    shutil.rmtree(root / renamed_onto / "photos")
    for path in (root / renamed_onto, root):
        os.utime(path, (old, old))
    assert app.remove_stale_work_roots(tmp_path) == [root]  # a root of only a server's own: removed


@pytest.mark.parametrize("name", ["call-notes.txt", "call-2026-12-01.m4a"])
def test_a_killed_servers_root_whose_api_holds_a_users_file_named_like_a_call_is_left(tmp_path, name):
    """A user's folder renamed onto api/, holding files whose names begin with "call-": left at exit, then removed
    whole at the next start, taken for the server's call folders (forty-third hostile round)."""
    root = tmp_path / f"xmempp-app-{_dead_pid()}-killed_1"
    (root / "api").mkdir(parents=True)
    (root / "api" / name).write_text("the user's")
    old = time.time() - 120
    for path in (*root.rglob("*"), root):
        os.utime(path, (old, old))
    assert app.remove_stale_work_roots(tmp_path) == []
    assert (root / "api" / name).read_text() == "the user's"


def test_a_killed_servers_root_is_removed_though_gradio_left_a_file_it_received_an_upload_into(tmp_path):
    """Gradio leaves an empty tmp<8> file at the top of its upload cache after a browser's upload: a killed
    server's root was then left for good, its uploads/ taken for a user's (forty-second hostile round)."""
    root = tmp_path / f"xmempp-app-{_dead_pid()}-killed_1"
    (root / "uploads" / SHA).mkdir(parents=True)
    (root / "uploads" / SHA / "clip.mp4").write_text("an upload")
    (root / "uploads" / "tmpp8xycvhn").write_bytes(b"")
    old = time.time() - 120
    for path in (*root.rglob("*"), root):
        os.utime(path, (old, old))
    assert app.remove_stale_work_roots(tmp_path) == [root]


@pytest.mark.parametrize("suffix", ["saved", "backup-for-bugreport", "keep.d", "ABCDEFGH"])
def test_a_copy_of_a_work_root_under_another_name_is_left_at_the_next_start(tmp_path, suffix):
    """An operator's copy of a root (`cp -a ROOT $TMPDIR/xmempp-app-<pid>-saved`, kept for a bug report) was removed
    whole by the next start, "left by a server that is no longer running" (forty-fourth hostile round). Only the
    names a server gives its root (mkdtemp's eight characters) are a server's."""
    copy = tmp_path / f"xmempp-app-{_dead_pid()}-{suffix}"
    (copy / "uploads" / SHA).mkdir(parents=True)
    (copy / "uploads" / SHA / "clip.mp4").write_text("an upload")
    old = time.time() - 120
    for path in (*copy.rglob("*"), copy):
        os.utime(path, (old, old))
    assert app.remove_stale_work_roots(tmp_path) == []
    assert (copy / "uploads" / SHA / "clip.mp4").read_text() == "an upload"


def test_a_killed_servers_root_with_a_users_file_named_like_gradios_receiving_file_is_left(tmp_path):
    """A file of a user's at uploads/, named like Python's tempfile (`tmpnotes_01`), went with a killed server's
    root at the next start, taken for the empty one Gradio leaves (forty-third hostile round)."""
    root = tmp_path / f"xmempp-app-{_dead_pid()}-killed_1"
    (root / "uploads" / SHA).mkdir(parents=True)
    (root / "uploads" / SHA / "clip.mp4").write_text("an upload")
    (root / "uploads" / "tmpnotes_01").write_text("the user's notes")
    old = time.time() - 120
    for path in (*root.rglob("*"), root):
        os.utime(path, (old, old))
    assert app.remove_stale_work_roots(tmp_path) == []
    assert (root / "uploads" / "tmpnotes_01").read_text() == "the user's notes"


def test_a_killed_servers_root_with_a_file_at_uploads_is_left_at_the_next_start(tmp_path):
    root = tmp_path / f"xmempp-app-{_dead_pid()}-killed_1"
    root.mkdir()
    (root / "uploads").write_text("a user's file")
    old = time.time() - 120
    for path in (root / "uploads", root):
        os.utime(path, (old, old))
    assert app.remove_stale_work_roots(tmp_path) == []
    assert (root / "uploads").read_text() == "a user's file"


def _is_locked(folder: Path) -> bool:
    import fcntl

    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def test_a_dead_servers_root_holding_a_running_servers_root_is_left(tmp_path):
    """A running server's work root moved into a folder another start took for a dead server's root was removed
    with it: only the candidate's own lock was looked at (thirty-sixth hostile round)."""
    dead = tmp_path / f"xmempp-app-{_dead_pid()}-madeagai"
    running = dead / "session-movedrot"
    (running / "video-1").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys; held = os.open(sys.argv[1], os.O_RDONLY); "
                               "fcntl.flock(held, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
                               str(running)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert app.remove_stale_work_roots(tmp_path) == []
        assert (running / "video-1").is_dir()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert app.remove_stale_work_roots(tmp_path) == [dead]


def test_a_root_changed_in_the_last_moments_is_left_for_a_server_may_be_using_it(tmp_path, monkeypatch):
    """A running server's root removed, made again by a visitor's upload, and seen by a second start in the moment
    before the server held it again, was removed as a dead server's (thirty-seventh hostile round)."""
    import demo.work_root

    monkeypatch.setattr(demo.work_root, "RECENT_S", 60.0)
    root = tmp_path / f"xmempp-app-{_dead_pid()}-madeagai"
    (root / "uploads").mkdir(parents=True)
    assert app.remove_stale_work_roots(tmp_path) == []
    old = time.time() - 120
    for path in (root / "uploads", root):
        os.utime(path, (old, old))
    assert app.remove_stale_work_roots(tmp_path) == [root]



@pytest.mark.parametrize("put", ["file", "fifo", "dangling link"])
def test_a_work_root_replaced_by_a_file_refuses_new_work_in_words(tmp_path, monkeypatch, put):
    """The root replaced by a file, a FIFO or a link to nothing: a new visitor's Example ended in "Something went
    wrong (FileExistsError)" (thirty-seventh hostile round)."""
    import atexit
    import shutil

    from demo.work_root import WorkRoot
    from xmempp.errors import XMemPPError

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    held = WorkRoot(root)
    shutil.rmtree(root)
    {"file": lambda: root.write_text("x"), "fifo": lambda: os.mkfifo(root),
     "dangling link": lambda: root.symlink_to(tmp_path / "nowhere")}[put]()
    with pytest.raises(XMemPPError, match="the server's work folder was replaced while it ran"):
        held.folder()


def test_a_link_put_at_the_work_roots_uploads_is_removed_and_what_it_leads_to_kept(tmp_path, monkeypatch):
    """`<root>/uploads` made a link to a user's folder: Gradio wrote every upload into it and served the user's
    files under /gradio_api/file= (thirty-eighth hostile round)."""
    import atexit

    from demo.work_root import WorkRoot

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    users = tmp_path / "users"
    users.mkdir()
    (users / "secret.txt").write_text("mine")
    (root / "uploads").symlink_to(users, target_is_directory=True)
    WorkRoot(root).watch(every_s=0.05)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ((root / "uploads").is_symlink() or not (root / "uploads").is_dir()):
        time.sleep(0.05)  # unlinked, then made again: looked at in between, it is neither
    assert (root / "uploads").is_dir() and not (root / "uploads").is_symlink()
    assert (users / "secret.txt").read_text() == "mine"


def test_a_link_put_in_the_work_roots_uploads_is_removed_and_what_it_leads_to_kept(tmp_path, monkeypatch):
    """A link at uploads/<sha256 of an upload> to a user's folder: the next upload of that content replaced the
    user's file of that name there (thirty-ninth hostile round). Gradio makes folders there, never links."""
    import atexit

    from demo.work_root import WorkRoot

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    (root / "uploads").mkdir(parents=True)
    users = tmp_path / "users"
    users.mkdir()
    (users / "clip.mp4").write_text("mine")
    (root / "uploads" / "0123abcd").symlink_to(users, target_is_directory=True)
    held = WorkRoot(root)
    held.own(root / "uploads")  # as the app does when it makes uploads/
    held.watch(every_s=0.05)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.lexists(root / "uploads" / "0123abcd"):
        time.sleep(0.05)
    assert not os.path.lexists(root / "uploads" / "0123abcd") and (users / "clip.mp4").read_text() == "mine"


@pytest.mark.parametrize("made_by", ["a visitor's upload, since", "a user, long before"])
def test_a_root_made_again_by_an_upload_is_held_and_a_users_old_folder_is_not(tmp_path, monkeypatch, made_by):
    """Gradio's upload made the removed root again before the watcher looked: the server refused every session and
    API call until restarted (thirty-ninth hostile round). A user's folder of the same names, older than the
    removal, stays refused."""
    import atexit
    import shutil

    from demo.work_root import WorkRoot
    from xmempp.errors import XMemPPError

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    held = WorkRoot(root)
    shutil.rmtree(root)
    (root / "uploads" / SHA).mkdir(parents=True)
    (root / "uploads" / SHA / "clip.mp4").write_text("an upload")
    if made_by == "a user, long before":
        old = time.time() - 3600
        for path in (root / "uploads" / SHA / "clip.mp4", root / "uploads" / SHA, root / "uploads"):
            os.utime(path, (old, old))
        with pytest.raises(XMemPPError, match="the server's work folder was replaced"):
            held.folder()
        assert not _is_locked(root)
    else:
        assert held.folder() == root and _is_locked(root)


def test_a_work_root_another_namespace_mounts_something_on_stays_at_exit(tmp_path, monkeypatch, caplog):
    """A tmpfs (or a bind mount) put at the work root's path by another mount namespace: the server's exit removed
    the root, and the system took that mount away with all it held (forty-fifth hostile round)."""
    import atexit

    from demo.work_root import WorkRoot
    from tests.helpers import another_mount_namespace

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    app.hold_for_life(root)
    held = WorkRoot(root)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "only.txt").write_text("theirs")
    with another_mount_namespace((tmp_path / "theirs", root)) as pid:
        held.remove()  # at exit
        assert f"{root}" in Path(f"/proc/{pid}/mountinfo").read_text()  # still mounted there
    assert "is a mount point of another mount namespace: it stays" in caplog.text
    assert root.is_dir()


@pytest.mark.slow
@pytest.mark.parametrize("put", ["a link to a user's folder at the root", "a user's folder renamed onto uploads/"])
def test_nothing_is_uploaded_into_nor_served_from_what_is_put_at_the_work_root(tmp_path, checkpoint, put):
    """The root swapped for a link to a user's folder: the server said "nothing is written there", and Gradio's
    upload route went on writing each upload into that folder, and served its files to anyone; a user's folder
    renamed onto uploads/ took the uploads too (forty-sixth hostile round)."""
    import httpx

    from tests.conftest import start_app

    temp = tmp_path / "tmp"
    temp.mkdir()
    users = tmp_path / "users"
    (users / "uploads").mkdir(parents=True)
    (users / "uploads" / "secret.txt").write_text("mine")
    with start_app(tmp_path / "app.log", ["--weights", str(checkpoint), "--sam-model", "none", "--no-speed-check"],
                   env={"TMPDIR": str(temp)}) as url:
        (root,) = temp.glob("xmempp-app-*")
        if put == "a link to a user's folder at the root":
            (temp / "link").symlink_to(users, target_is_directory=True)
            os.rename(root, temp / "moved-root")
            os.rename(temp / "link", root)  # no moment without something at the root's path
        else:
            os.rename(root / "uploads", temp / "moved-uploads")
            os.rename(users / "uploads", root / "uploads")
        reply = httpx.post(f"{url}gradio_api/upload", files={"files": ("clip.mp4", b"a visitor's video")}, timeout=30)
        assert reply.status_code == 503 and "was replaced while it ran: it takes no new work now" in reply.text
        served = httpx.get(f"{url}gradio_api/file={root}/uploads/secret.txt", timeout=30)
        assert served.status_code == 503 and "mine" not in served.text
        # a page's event gets its words as JSON, in a status the page shows them for: it read the plain text as
        # "Could not parse server response: SyntaxError ..." (fifty-eighth hostile round, F2)
        event = {"data": [], "fn_index": 0, "session_hash": "visitor"}
        joined = httpx.post(f"{url}gradio_api/queue/join", json=event, timeout=30,
                            headers={"user-agent": "Mozilla/5.0", "sec-fetch-mode": "cors"})
        assert joined.status_code == 507 and "it takes no new work now" in joined.json()["detail"]
        over_http = httpx.post(f"{url}gradio_api/queue/join", json=event, timeout=30,  # no Sec-Fetch-Mode there
                               headers={"user-agent": "Mozilla/5.0", "origin": url.rstrip("/")})
        assert over_http.status_code == 507
        by_script = httpx.post(f"{url}gradio_api/queue/join", json=event, timeout=30,
                               headers={"user-agent": "Mozilla/5.0 (a script's own)"})
        assert by_script.status_code == 503 and "it takes no new work now" in by_script.json()["detail"]
        mine = users if put == "a link to a user's folder at the root" else root
        assert sorted(path.name for path in (mine / "uploads").iterdir()) == ["secret.txt"]
    assert "Traceback" not in (tmp_path / "app.log").read_text()


def test_an_upload_under_way_when_a_folder_is_mounted_at_its_place_is_refused_and_writes_nothing(tmp_path,
                                                                                                   checkpoint):
    """The guard looked when a request began: an upload whose body was still arriving when a user's folder was
    mounted at uploads/<sha> got 200, and its file replaced the user's of that name; `/gradio_api/api/<name>` went
    unguarded (forty-ninth hostile round). Its received file goes too."""
    import socket
    import subprocess

    import httpx

    from tests.conftest import start_app

    temp = tmp_path / "tmp"
    temp.mkdir()
    users = tmp_path / "users"
    users.mkdir()
    (users / "clip.mp4").write_text("mine")
    content = b"a visitor's video"
    with start_app(tmp_path / "app.log", ["--weights", str(checkpoint), "--sam-model", "none", "--no-speed-check"],
                   env={"TMPDIR": str(temp)}) as url:
        (root,) = temp.glob("xmempp-app-*")
        first = httpx.post(f"{url}gradio_api/upload", files={"files": ("clip.mp4", content)}, timeout=30)
        cached = Path(first.json()[0]).parent  # uploads/<sha>: the same content goes there again
        boundary = "xmempp-test-boundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"clip.mp4\"\r\n"
                "Content-Type: video/mp4\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
            connection.sendall((f"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                                f"boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n").encode())
            connection.sendall(body[:-5])  # the request has begun, and passed the guard
            time.sleep(1)
            if subprocess.run(["mount", "--bind", str(users), str(cached)], capture_output=True).returncode != 0:
                pytest.skip("bind mounts are not allowed here")
            try:
                connection.sendall(body[-5:])
                answer = connection.recv(65536).decode()
                while "\r\n\r\n" in answer and len(answer.split("\r\n\r\n", 1)[1]) < int(
                        re.search(r"content-length: (\d+)", answer, re.I).group(1)):
                    answer += connection.recv(65536).decode()  # the body may come in a packet of its own
                api = httpx.post(f"{url}gradio_api/api/server_limits", json={"data": []}, timeout=30)
            finally:
                subprocess.run(["umount", str(cached)], check=True)
        assert answer.startswith("HTTP/1.1 503") and "something is mounted in the server's folder for uploads" in answer
        assert api.status_code == 503
        assert (users / "clip.mp4").read_text() == "mine" and sorted(os.listdir(users)) == ["clip.mp4"]
        assert sorted(os.listdir(root / "uploads")) == [cached.name]  # the refused upload's received file went
    assert "Traceback" not in (tmp_path / "app.log").read_text()


def test_gradios_cache_clean_up_never_takes_another_namespaces_mount_at_an_uploads_name(tmp_path, checkpoint):
    """At exit (and every half hour) Gradio removes the files it received, by path: a user's file another mount
    namespace mounted at an upload's name was taken away from it (forty-ninth hostile round)."""
    import contextlib

    import httpx

    from tests.conftest import start_app
    from tests.helpers import another_mount_namespace

    temp = tmp_path / "tmp"
    temp.mkdir()
    users = tmp_path / "users.txt"
    users.write_text("mine")
    with start_app(tmp_path / "app.log", ["--weights", str(checkpoint), "--sam-model", "none", "--no-speed-check"],
                   env={"TMPDIR": str(temp)}) as url:
        uploaded = Path(httpx.post(f"{url}gradio_api/upload", files={"files": ("clip.mp4", b"a visitor's video")},
                                   timeout=30).json()[0])
        namespace = contextlib.ExitStack()
        pid = namespace.enter_context(another_mount_namespace((users, uploaded)))
        time.sleep(5)  # other namespaces' mounts are read again about once a second (README)
    try:  # the server has stopped (SIGTERM): the mount is still there, in its namespace
        assert str(uploaded) in Path(f"/proc/{pid}/mountinfo").read_text()
        assert Path(f"/proc/{pid}/root{uploaded}").read_text() == "mine"
    finally:
        namespace.close()
    assert users.read_text() == "mine"
    assert "Gradio's clean-up of its cached files is skipped" in (tmp_path / "app.log").read_text()


def test_a_server_stopped_on_a_read_only_disk_says_what_it_left_in_words_without_gradios_traceback(tmp_path,
                                                                                                 checkpoint):
    """SIGTERM with TMPDIR remounted read-only: Gradio's clean-up raised, and its traceback with "Application shutdown
    failed" reached the log; the root left was said as holding 'uploads', "which this server did not make there"
    (fifty-third hostile round)."""
    import subprocess

    import httpx

    from tests.conftest import start_app

    temp = tmp_path / "tmp"
    temp.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "xmempp-test", str(temp)],
                      capture_output=True).returncode != 0:
        pytest.skip("a tmpfs mount is not allowed here")
    try:
        with start_app(tmp_path / "app.log", ["--weights", str(checkpoint), "--sam-model", "none",
                                               "--no-speed-check"], env={"TMPDIR": str(temp)}) as url:
            httpx.post(f"{url}gradio_api/upload", files={"files": ("clip.mp4", b"a visitor's video")}, timeout=30)
            subprocess.run(["mount", "-o", "remount,ro", str(temp)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(temp)], check=True)
    log = (tmp_path / "app.log").read_text()
    assert "Traceback" not in log and "Application shutdown failed" not in log, log[-3000:]
    assert "Gradio's clean-up of its cached files stopped: the file system is read-only" in log, log[-3000:]
    assert "'uploads', which it made there but could not remove" in log, log[-3000:]


def test_an_upload_gradio_cannot_rename_into_place_is_dropped_never_copied_into_what_is_there(tmp_path):
    """Gradio copies a received file whose rename fails (its place is a mount point, or on another mount): the
    copy wrote into a user's file mounted at that place (forty-ninth hostile round)."""
    import subprocess

    from demo.work_root import _put_in_place_or_drop

    received, place = tmp_path / "tmpabcd1234", tmp_path / "clip.mp4"
    received.write_text("a visitor's video")
    users = tmp_path / "users.txt"
    users.write_text("mine")
    place.touch()
    if subprocess.run(["mount", "--bind", str(users), str(place)], capture_output=True).returncode != 0:
        pytest.skip("bind mounts are not allowed here")
    try:
        _put_in_place_or_drop([str(received)], [str(place)])
        assert place.read_text() == "mine"
    finally:
        subprocess.run(["umount", str(place)], check=True)
    assert users.read_text() == "mine" and not received.exists()


def test_the_uploads_folder_is_looked_through_again_only_once_it_has_changed(tmp_path, monkeypatch):
    """Every guarded request and the watcher's five looks a second went through each entry of uploads/: ten thousand
    tiny uploads made each look take a second, and held every visitor's page (forty-ninth hostile round)."""
    import atexit

    import demo.work_root
    from demo.work_root import WorkRoot

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    held = WorkRoot(root)
    held.own(app.use_upload_folder(root))
    for index in range(3):
        (root / "uploads" / f"{index:064x}").mkdir()
    time.sleep(0.2)  # past the clock's ticks: a change this recent is looked at again
    looks = []
    real_scandir = os.scandir
    monkeypatch.setattr(demo.work_root.os, "scandir",
                        lambda path: looks.append(path) or real_scandir(path))
    held.check_uploads()
    held.check_uploads()
    held.check_uploads()
    assert looks.count(root / "uploads") <= 2  # the first look; a second where the clock's tick could hide a change
    looks.clear()
    (root / "uploads" / "link").symlink_to(tmp_path)  # a change: looked at, and the link goes
    held.check_uploads()
    assert looks and not (root / "uploads" / "link").is_symlink()


def test_a_users_folder_renamed_onto_uploads_is_left_exactly_as_it_is_links_included(tmp_path, monkeypatch):
    """The watcher refused a user's folder renamed onto uploads/, and yet removed every symbolic link at its top,
    five times a second (forty-seventh hostile round)."""
    import atexit

    from demo.work_root import WorkRoot

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    held = WorkRoot(root)
    held.own(app.use_upload_folder(root))
    users = tmp_path / "users"
    users.mkdir()
    (users / "precious.txt").write_text("mine")
    (users / "latest").symlink_to("precious.txt")
    os.rename(root / "uploads", tmp_path / "moved-uploads")
    os.rename(users, root / "uploads")
    held.watch(every_s=0.05)
    time.sleep(1)
    assert sorted(os.listdir(root / "uploads")) == ["latest", "precious.txt"]
    assert os.readlink(root / "uploads" / "latest") == "precious.txt"
    with pytest.raises(XMemPPError, match="folder for uploads was replaced"):
        held.check_uploads()


@pytest.mark.parametrize("namespace", ["this one", "another"])
@pytest.mark.parametrize("where", ["uploads/<sha>", "uploads/<sha>/<file>", "uploads/<sha>/<folder>"])
def test_nothing_goes_into_nor_comes_from_what_is_mounted_in_the_servers_uploads(tmp_path, monkeypatch, namespace,
                                                                                   where):
    """A user's folder bind-mounted at uploads/<sha of an upload>: the next upload of that content replaced the
    user's file of that name, and the folder's other files were served to anyone (forty-eighth hostile round). One
    level down, a file mounted at an upload's name or a folder under uploads/<sha>/, went unseen: the file was
    served, then written over by the next upload (forty-ninth)."""
    import atexit
    import subprocess

    from demo.work_root import WorkRoot
    from tests.helpers import another_mount_namespace

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    held = WorkRoot(root)
    held.own(app.use_upload_folder(root))
    users = tmp_path / "users"
    users.mkdir()
    (users / "clip.mp4").write_text("mine")
    cached = root / "uploads" / ("c3" * 32)
    cached.mkdir()
    (cached / "clip.mp4").write_text("an upload")
    source, target = {"uploads/<sha>": (users, cached), "uploads/<sha>/<file>": (users / "clip.mp4",
                                                                                    cached / "clip.mp4"),
                      "uploads/<sha>/<folder>": (users, cached / "sub")}[where]
    target.mkdir(exist_ok=True) if source.is_dir() else None
    held.check_uploads()  # the server's cache: fine
    if namespace == "this one":
        if subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True).returncode != 0:
            pytest.skip("bind mounts are not allowed here")
        try:
            with pytest.raises(XMemPPError, match="something is mounted in the server's folder for uploads"):
                held.check_uploads()
            assert held.mount_in_uploads() == str(target)
        finally:
            subprocess.run(["umount", str(target)], check=True)
    else:
        with another_mount_namespace((source, target)):
            assert _soon(lambda: held.mount_in_uploads() == str(target))  # read again about once a second (README)
            with pytest.raises(XMemPPError, match="something is mounted in the server's folder for uploads"):
                held.check_uploads()
    assert _soon(lambda: held.mount_in_uploads() is None)
    held.check_uploads()  # unmounted: uploads go on
    assert (users / "clip.mp4").read_text() == "mine"


def test_a_start_removes_the_hidden_folder_of_a_start_killed_before_it_named_its_root(tmp_path):
    """A server killed between making its work root (under a hidden name) and renaming it left an empty
    `.xmempp-app-starting-*` in TMPDIR for good: no later start looked at that name (forty-eighth hostile round)."""
    killed_while_starting = (
        "import os, signal\n"
        "import demo.work_root as work_root\n"
        "os.rename = lambda *names: os.kill(os.getpid(), signal.SIGKILL)\n"
        "work_root.make_work_root()\n"
    )
    environment = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(Path(app.__file__).parent)}
    killed = subprocess.run([sys.executable, "-c", killed_while_starting], env=environment, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    (left,) = tmp_path.glob(".xmempp-app-starting-*")
    users = tmp_path / ".xmempp-app-starting-notes"  # not mkdtemp's name: someone's
    users.mkdir()
    holding = tmp_path / ".xmempp-app-starting-abcd1234"  # something in it: never removed
    (holding / "keep").mkdir(parents=True)

    assert remove_unfinished_starts(tmp_path) == [left]
    assert not left.exists() and users.is_dir() and (holding / "keep").is_dir()


def test_a_start_leaves_a_hidden_start_folder_another_namespace_mounts_on_or_made_otherwise(tmp_path):
    """The clean-up of killed starts rmdir-ed such a folder that another mount namespace had mounted a user's
    folder on: the system took that mount away (fiftieth hostile round). One not made as mkdtemp makes it (another
    owner or mode) is someone's, and stays too."""
    from tests.helpers import another_mount_namespace

    users = tmp_path / "users"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    mounted = tmp_path / ".xmempp-app-starting-abcdefgh"
    mounted.mkdir(mode=0o700)
    open_to_all = tmp_path / ".xmempp-app-starting-opentoal"
    open_to_all.mkdir()
    open_to_all.chmod(0o755)
    with another_mount_namespace((users, mounted)) as pid:
        time.sleep(0.1)
        assert remove_unfinished_starts(tmp_path) == []
        assert f"{mounted}" in Path(f"/proc/{pid}/mountinfo").read_text()
    assert mounted.is_dir() and open_to_all.is_dir() and (users / "keep.txt").read_text() == "mine"


def test_a_start_in_progress_keeps_its_hidden_folder(tmp_path, monkeypatch):
    """Another server's start holds its hidden folder from a moment after making it; in that moment the folder is
    new. Neither is taken for a killed start's."""
    import fcntl

    import demo.work_root

    held = tmp_path / ".xmempp-app-starting-held1234"
    held.mkdir()
    holding = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(holding, fcntl.LOCK_EX)  # as a start in progress does (hold_for_life)
    try:
        assert remove_unfinished_starts(tmp_path) == []
    finally:
        os.close(holding)
    held.rmdir()
    monkeypatch.setattr(demo.work_root, "RECENT_S", 60.0)
    new = tmp_path / ".xmempp-app-starting-new12345"
    new.mkdir()
    assert remove_unfinished_starts(tmp_path) == []
    assert new.is_dir()


def test_an_events_output_is_never_written_into_a_file_mounted_in_uploads_meanwhile(tmp_path, monkeypatch):
    """Gradio writes each output image of an event into uploads/<sha of its bytes>/image.png as the event's step
    ends, long after its request passed the guard: a user's file mounted at that name while a visitor's run went on
    was written over, 18 of 19 (fiftieth hostile round). The event now stops in words and writes nothing."""
    import asyncio
    import atexit
    import subprocess

    import gradio as gr
    import numpy as np

    from demo.work_root import WorkRoot, guard_event_files

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    held = WorkRoot(root)
    uploads = app.use_upload_folder(root)
    held.own(uploads)
    frame = np.full((8, 8, 3), 200, np.uint8)
    with gr.Blocks() as blocks:
        gr.Image().change(lambda: frame, None, gr.Image(format="png"))
    guard_event_files(blocks, held)
    block_fn = next(iter(blocks.fns.values()))
    first = asyncio.run(blocks.postprocess_data(block_fn, frame, None))  # the run's first step: written, fine
    written = Path(first[0]["path"]) if isinstance(first[0], dict) else Path(first[0].path)
    assert written.is_relative_to(uploads)
    users = tmp_path / "users.png"
    users.write_bytes(b"mine")
    if subprocess.run(["mount", "--bind", str(users), str(written)], capture_output=True).returncode != 0:
        pytest.skip("bind mounts are not allowed here")
    try:
        with pytest.raises(gr.Error, match="something is mounted in the server's folder for uploads"):
            asyncio.run(blocks.postprocess_data(block_fn, frame, None))  # the next step, the same image
    finally:
        subprocess.run(["umount", str(written)], check=True)
    assert users.read_bytes() == b"mine"


def _soon(condition, seconds: float = 30.0) -> bool:
    """Whether `condition()` holds within `seconds` (a background look, slower on a loaded machine)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_stopped_server_removes_its_root_where_its_held_folder_lists_no_name_made_since(tmp_path, monkeypatch):
    """On btrfs a folder opened before names were made in it lists none of them through that opening: the server,
    which holds its root open from its start, found it empty at exit and left it, uploads and all, saying 'uploads'
    was not its own (fifty-second hostile round). Here listing through the held descriptor is made to behave so."""
    import atexit

    from demo.work_root import WorkRoot

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    root = tmp_path / f"xmempp-app-{os.getpid()}-running1"
    root.mkdir()
    held = WorkRoot(root)
    uploads = app.use_upload_folder(root)
    held.own(uploads)
    (uploads / ("ab" * 32)).mkdir()
    (uploads / ("ab" * 32) / "clip.mp4").write_text("a visitor's video")
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": [] if path == held._descriptor else real_listdir(path))
    held.remove()
    assert not root.exists()


@pytest.mark.parametrize("named", ["a folder", "a path through a file"])
def test_gradios_clean_up_goes_on_past_what_a_call_named_that_is_no_file(tmp_path, caplog, named):
    """A call whose file object named a folder in uploads/ (or `<an upload>/x`, through a file) left that path in
    Gradio's list of its files, and every clean-up after stopped at it ("it is a folder, not a file"; "a part of the
    path is a file"), the other visitors' uploads left (sixtieth hostile round, F5; sixty-first, F1). What was named
    stays; the files go."""
    import logging
    import types

    import gradio.route_utils as route_utils

    from demo.work_root import guard_gradios_uploads

    folder, upload = tmp_path / "uploads" / "abc", tmp_path / "uploads" / "def" / "clip.mp4"
    folder.mkdir(parents=True)
    upload.parent.mkdir()
    upload.write_bytes(b"a visitor's video")
    other = tmp_path / "uploads" / "ghi" / "v.zip"
    other.parent.mkdir()
    other.write_bytes(b"another visitor's frames")
    stopping = folder if named == "a folder" else other / "x"
    guard_gradios_uploads(types.SimpleNamespace(mount_in_uploads=lambda: None))
    blocks = types.SimpleNamespace(blocks={}, temp_file_sets=[{str(stopping)}, {str(upload)}])
    with caplog.at_level(logging.WARNING):
        route_utils.delete_files_created_by_app(blocks, None)
    assert folder.is_dir() and other.exists() and not upload.exists()
    assert "clean-up of its cached files stopped" not in caplog.text
