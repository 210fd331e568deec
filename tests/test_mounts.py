"""The kernel's table of mounts, read so that no folder holding a mount point (a bind mount of anyone's folder) is
removed whole."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from xmempp.mounts import mount_points, mount_risk


def test_mount_points_are_read_with_the_kernels_escapes(tmp_path):
    table = tmp_path / "mountinfo"
    table.write_text("22 1 0:21 / / rw - ext4 /dev/root rw\n"
                     "95 22 0:21 /home/u/x /tmp/xmempp-app-9-a\\040b rw,relatime shared:1 - ext4 /dev/root rw\n")
    assert mount_points(table) == {"/", "/tmp/xmempp-app-9-a b"}


def test_a_mount_point_in_a_folder_or_the_folder_itself_is_found_and_a_neighbour_is_not(tmp_path):
    (tmp_path / "round" / "masks").mkdir(parents=True)
    (tmp_path / "round-2").mkdir()
    real = os.path.realpath(tmp_path)
    assert mount_risk(tmp_path / "round", {f"{real}/round/masks"}) == f"it holds a mount point ({real}/round/masks)"
    assert mount_risk(tmp_path / "round", {f"{real}/round"}) == f"it is a mount point ({real}/round)"
    assert mount_risk(tmp_path / "round", {f"{real}/round-2", "/"}) is None


def test_without_the_table_on_linux_no_folder_may_be_removed_whole(tmp_path, monkeypatch):
    """With /proc unreadable (a sandbox), a bind mount inside a removed folder went unseen and was emptied
    (twenty-fifth hostile round)."""
    import xmempp.mounts

    monkeypatch.setattr(sys, "platform", "linux")
    assert mount_points(tmp_path / "missing") is None
    monkeypatch.setattr(xmempp.mounts, "mount_points", lambda: None)
    assert mount_risk(tmp_path) == ("whether a file system is mounted in it cannot be told "
                                          "(/proc/self/mountinfo cannot be read)")


def test_a_table_that_lacks_the_root_is_no_table(tmp_path):
    """An empty mountinfo planted in a sandbox was read as "nothing is mounted", and a bind-mounted folder inside a
    copied round was emptied (twenty-sixth hostile round)."""
    table = tmp_path / "mountinfo"
    table.write_text("")
    assert mount_points(table) is None
    table.write_text("95 22 0:21 /home/u/x /tmp/a rw - ext4 /dev/root rw\n")
    assert mount_points(table) is None


# ----- removing xmempp's own folders ----------------------------------------------------------------------------
def test_removing_a_tree_leaves_a_folder_mounted_in_it_whole_and_removes_the_rest(tmp_path):
    """A user's folder bind-mounted in an export's staging folder, a run's frames or a round moved aside, after every
    check, was emptied by rmtree (thirty-first hostile round)."""
    from tests.test_outputs import bind_mounted
    from xmempp.mounts import remove_tree

    users = tmp_path / "users"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "mask.png").write_bytes(b"png")
    (tree / "a" / "to-users").symlink_to(users)
    with bind_mounted(users, tree / "a" / "b" / "mounted"):
        parent = os.open(tmp_path, os.O_RDONLY)
        try:
            assert remove_tree("tree", parent) == ["tree/a/b/mounted"]
        finally:
            os.close(parent)
        assert (tree / "a" / "b" / "mounted" / "keep.txt").read_text() == "mine"
        assert sorted(os.listdir(tree)) == ["a"] and sorted(os.listdir(tree / "a")) == ["b"]
    assert (users / "keep.txt").read_text() == "mine"


def test_removing_a_tree_nested_past_the_recursion_limit_removes_it_all(tmp_path):
    from xmempp.mounts import remove_tree

    deepest = str(tmp_path / "tree")
    os.mkdir(deepest)
    for _ in range(sys.getrecursionlimit() + 50):  # made one by one: os.makedirs recurses too
        deepest += "/x"
        os.mkdir(deepest)
    with open(deepest + "/file", "w") as file:
        file.write("last")
    parent = os.open(tmp_path, os.O_RDONLY)
    try:
        assert remove_tree("tree", parent) == []
        assert remove_tree("tree", parent) == []  # gone already: nothing to do
    finally:
        os.close(parent)
    assert os.listdir(tmp_path) == []


def test_a_folder_of_xmempps_own_with_a_mount_on_it_is_left_with_a_warning(tmp_path, caplog):
    """`run` made its frames in tempfile.TemporaryDirectory: a user's folder bind-mounted on it mid-run was emptied
    at the end, and the finished run exited 1 (thirty-first hostile round)."""
    import logging

    from tests.test_outputs import bind_mounted
    from xmempp.outputs import own_temporary_folder

    users = tmp_path / "users"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    with caplog.at_level(logging.WARNING), own_temporary_folder("xmempp-frames-", tmp_path) as folder:
        (folder / "frame_000000.jpg").write_bytes(b"jpg")
        mount = bind_mounted(users, folder)
        mount.__enter__()
    try:
        assert (folder / "keep.txt").read_text() == "mine"
        assert f"xmempp's folder {folder} was replaced while xmempp used it: what is there now stays" in caplog.text
    finally:
        mount.__exit__(None, None, None)
    assert (users / "keep.txt").read_text() == "mine"


def test_a_users_folder_renamed_to_the_name_of_one_of_xmempps_own_is_left_whole(tmp_path, caplog):
    """A user's folder renamed onto $TMPDIR/xmempp-frames-* (xmempp's moved away first) during a run was removed
    with all in it at the end, without a word (thirty-second hostile round)."""
    import logging

    from xmempp.outputs import own_temporary_folder

    users = tmp_path / "users"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    with caplog.at_level(logging.WARNING), own_temporary_folder("xmempp-frames-", tmp_path) as folder:
        folder.rename(tmp_path / "xmempps-moved-away")
        users.rename(folder)
    assert (folder / "keep.txt").read_text() == "mine"
    assert f"xmempp's folder {folder} was replaced while xmempp used it: what is there now stays" in caplog.text


def test_without_proc_on_linux_removing_a_tree_enters_no_folder(tmp_path, monkeypatch):
    """Without /proc the mount id cannot be read, and a bind mount on the same file system looked like a folder:
    it was entered and emptied (thirty-second hostile round). Nothing is entered then; the folder stays."""
    import xmempp.mounts
    from xmempp.mounts import remove_tree

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(xmempp.mounts, "_mount_id", lambda descriptor: None)
    (tmp_path / "tree" / "maybe-mounted").mkdir(parents=True)
    (tmp_path / "tree" / "maybe-mounted" / "keep.txt").write_text("mine")
    parent = os.open(tmp_path, os.O_RDONLY)
    try:
        assert remove_tree("tree", parent) == ["tree"]
    finally:
        os.close(parent)
    assert (tmp_path / "tree" / "maybe-mounted" / "keep.txt").read_text() == "mine"


def test_without_proc_the_folder_left_is_said_as_left_for_that_not_as_a_mount(tmp_path, monkeypatch, caplog):
    """Without /proc every run left its temporary folder with a warning that a file system was mounted there, which
    nothing was (thirty-third hostile round)."""
    import logging

    import xmempp.mounts
    import xmempp.outputs
    from xmempp.outputs import own_temporary_folder

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(xmempp.mounts, "_mount_id", lambda descriptor: None)
    monkeypatch.setattr(xmempp.outputs, "mount_points", lambda: None)
    with caplog.at_level(logging.WARNING), own_temporary_folder("xmempp-frames-", tmp_path) as folder:
        (folder / "frame_000000.jpg").write_bytes(b"jpg")
    assert f"xmempp's folder {folder} stays: whether a file system is mounted in it cannot be told" in caplog.text
    assert "where a file system is mounted" not in caplog.text


def test_without_proc_an_empty_folder_is_removed_all_the_same(tmp_path, monkeypatch):
    """The system refuses to remove a mount point, so an empty folder may go even where mounts cannot be told."""
    import xmempp.mounts
    from xmempp.mounts import remove_tree

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(xmempp.mounts, "_mount_id", lambda descriptor: None)
    (tmp_path / "tree").mkdir()  # an export's staging folder, refused before anything was written into it
    parent = os.open(tmp_path, os.O_RDONLY)
    try:
        assert remove_tree("tree", parent) == []
    finally:
        os.close(parent)
    assert os.listdir(tmp_path) == []


def test_a_walk_that_runs_out_of_open_files_says_so_rather_than_take_a_folder_for_a_mount(tmp_path, monkeypatch):
    """Under `ulimit -n 1024`, past about 1000 levels /proc/self/fdinfo could not be opened: each deeper folder was
    taken for a mount, not looked through (an input there went unchecked), and the removal warned of a mounted
    file system where none was (thirty-seventh hostile round)."""
    import builtins
    import errno

    from xmempp.mounts import first_removed_with

    (tmp_path / "entry" / "a" / "b").mkdir(parents=True)
    real_open = builtins.open

    def no_file_left(file, *args, **kwargs):
        if str(file).startswith("/proc/self/fdinfo/"):
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_file_left)
    with pytest.raises(OSError) as raised:
        first_removed_with([tmp_path / "entry"], None, {(0, 0)})
    assert raised.value.errno == errno.EMFILE



@pytest.mark.parametrize("mounted", ["a folder", "a file"])
def test_a_mount_of_another_namespace_reached_through_its_proc_root_is_found_and_never_removed(tmp_path, mounted):
    """An export folder reached through /proc/PID/root of another mount namespace, with a file system mounted there
    inside the earlier entry: this process's table does not list it, and the system lets this process remove a
    mount point of another namespace (it detaches the mount, with all it holds): export --overwrite removed it,
    unsaid (forty-third hostile round)."""
    from tests.helpers import another_mount_namespace
    from xmempp.mounts import remove_tree

    entry = tmp_path / "E" / "mattes"
    entry.mkdir(parents=True)
    (entry / "0.png").write_bytes(b"an earlier export's mask")
    users = tmp_path / ("theirs" if mounted == "a folder" else "theirs.png")
    users.mkdir() if mounted == "a folder" else users.write_bytes(b"theirs")
    target = entry / ("keepdir" if mounted == "a folder" else "keep.png")
    target.mkdir() if mounted == "a folder" else target.write_bytes(b"")
    with another_mount_namespace((users, target)) as pid:
        seen = Path(f"/proc/{pid}/root{entry}")
        assert mount_risk(seen) == f"it holds a mount point ({seen / target.name}, mounted in another mount namespace)"
        assert mount_risk(entry) == f"it holds a mount point ({target}, mounted in another mount namespace)"
        parent = os.open(seen.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert remove_tree("mattes", parent) == [f"mattes/{target.name}"]
        finally:
            os.close(parent)
        assert str(target) in Path(f"/proc/{pid}/mountinfo").read_text()  # still mounted there
        assert sorted(os.listdir(seen)) == [target.name]


def test_a_folder_that_is_itself_a_mount_point_of_another_namespace_is_found(tmp_path):
    """An export entry (or a copied round) that is itself a bind mount in another mount namespace, reached through
    its /proc/PID/root, was replaced, the mount left aside with a warning, where here it is refused (forty-third
    hostile round)."""
    from tests.helpers import another_mount_namespace

    (tmp_path / "theirs").mkdir()
    (tmp_path / "E" / "mattes").mkdir(parents=True)
    with another_mount_namespace((tmp_path / "theirs", tmp_path / "E" / "mattes")) as pid:
        seen = Path(f"/proc/{pid}/root{tmp_path}/E/mattes")
        assert mount_risk(seen) == f"it is a mount point ({seen}, mounted in another mount namespace)"


def test_files_of_an_overlay_whose_layers_lie_on_other_file_systems_are_no_mount_points(tmp_path):
    """On overlayfs a file's device is its layer's, not its folder's: every file of an input folder there was taken
    for a mount point, recorded, and the 1000 records were spent on them (forty-third hostile round)."""
    import shutil
    import subprocess

    from xmempp.mounts import mounted_at

    lower = Path("/dev/shm") / f"xmempp-test-{os.getpid()}"
    if sys.platform != "linux" or not Path("/dev/shm").is_dir() or shutil.which("mount") is None:
        pytest.skip("an overlay over /dev/shm needs Linux")
    lower.mkdir()
    try:
        (lower / "frame_000000.png").write_bytes(b"a mask")
        for name in ("upper", "work", "merged"):
            (tmp_path / name).mkdir()
        done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir="
                               f"{tmp_path / 'upper'},workdir={tmp_path / 'work'}", str(tmp_path / "merged")],
                              capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"an overlay mount is not allowed here ({done.stderr.decode().strip()})")
        try:
            merged = os.open(tmp_path / "merged", os.O_RDONLY | os.O_DIRECTORY)
            try:
                assert os.stat(tmp_path / "merged" / "frame_000000.png").st_dev != os.fstat(merged).st_dev
                assert mounted_at("frame_000000.png", merged) is False
            finally:
                os.close(merged)
        finally:
            subprocess.run(["umount", str(tmp_path / "merged")], check=True)
    finally:
        shutil.rmtree(lower)


@pytest.mark.parametrize("mounted", ["a folder", "a file"])
def test_a_containers_mount_in_a_folder_shared_with_it_is_found_and_never_removed_by_its_plain_path(tmp_path,
                                                                                                  mounted):
    """A folder shared with a container, which mounts something in it: by its plain path here, no table of this
    namespace lists that mount, and export --overwrite's removal of the earlier entry detached it, a tmpfs's files
    with it (forty-fourth hostile round)."""
    from tests.helpers import another_mount_namespace
    from xmempp.mounts import mounts_elsewhere, remove_tree

    entry = tmp_path / "E" / "mattes"
    entry.mkdir(parents=True)
    users = tmp_path / ("theirs" if mounted == "a folder" else "theirs.png")
    users.mkdir() if mounted == "a folder" else users.write_bytes(b"theirs")
    target = entry / ("sub" if mounted == "a folder" else "keep.png")
    target.mkdir() if mounted == "a folder" else target.write_bytes(b"")
    with another_mount_namespace((users, target)) as pid:
        folder = os.stat(entry)
        assert (folder.st_dev, folder.st_ino, target.name) in mounts_elsewhere({folder.st_dev})
        # only folders on the devices asked about are looked at: a hung FUSE mount of a container's hung every run
        assert (folder.st_dev, folder.st_ino, target.name) not in mounts_elsewhere({folder.st_dev + 1})
        assert mount_risk(entry) == f"it holds a mount point ({target}, mounted in another mount namespace)"
        parent = os.open(entry.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert remove_tree("mattes", parent) == [f"mattes/{target.name}"]
        finally:
            os.close(parent)
        assert str(target) in Path(f"/proc/{pid}/mountinfo").read_text()  # still mounted there


def test_a_file_a_container_mounts_at_an_output_files_name_is_never_replaced(tmp_path):
    """A file bind-mounted at OUTPUT/keys.npy (or a mask's, or coco.json's name) in another mount namespace: the
    rename that puts the new file in place detached the mount without a word (forty-fourth hostile round)."""
    from tests.helpers import another_mount_namespace
    from xmempp.errors import XMemPPError
    from xmempp.outputs import HeldFolder

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keys.npy").write_bytes(b"")
    (tmp_path / "theirs.npy").write_bytes(b"theirs")
    with another_mount_namespace((tmp_path / "theirs.npy", tmp_path / "out" / "keys.npy")) as pid:
        for spelled in (tmp_path / "out", Path(f"/proc/{pid}/root{tmp_path}/out")):
            refused = re.escape(f"{spelled / 'keys.npy'} is a mount point of another mount namespace")
            with HeldFolder(spelled) as folder, pytest.raises(XMemPPError, match=refused), \
                    folder.atomic_file("keys.npy") as file:
                file.write(b"new keys")
            with HeldFolder(spelled) as folder, pytest.raises(XMemPPError, match=refused):
                folder.unlink("keys.npy")  # as a run's start removes keys.json (forty-fifth hostile round)
        assert f"{tmp_path}/out/keys.npy" in Path(f"/proc/{pid}/mountinfo").read_text()
    assert sorted(os.listdir(tmp_path / "out")) == ["keys.npy"]


@pytest.mark.parametrize("name", ["overlay/frame_000004.jpg", "masks/frame_000004.png"])
def test_a_rerun_onto_a_file_a_container_mounts_is_refused_before_it_changes_the_earlier_run(
        tmp_path, square_clip, checkpoint, capsys, name):
    """Met only when its frame came, a file another namespace mounts at an overlay's or a mask's name stopped a
    rerun that had already taken the earlier run's keys away, marked its manifest unfinished and rewritten most of
    its masks: neither run could be exported any more (forty-sixth hostile round)."""
    import json

    from tests.helpers import another_mount_namespace
    from tests.test_user_problems import cli_run

    frames, masks = square_clip
    cli_options = ["--weights", str(checkpoint), "--device", "cpu", "--size", "96", "--quiet"]
    out = tmp_path / "out"
    assert cli_run(frames, masks, out, [*cli_options, "--frames", "0"]) == 0
    earlier = {path.name: path.read_bytes() for path in sorted((out / "masks").iterdir())}
    (tmp_path / "theirs").write_bytes(b"theirs")
    capsys.readouterr()
    with another_mount_namespace((tmp_path / "theirs", out / name)):
        assert cli_run(frames, masks, out, [*cli_options, "--frames", "0,6"]) == 1
    error = capsys.readouterr().err
    assert f"{out / name} is a mount point of another mount namespace" in error and "bug" not in error
    assert (out / "keys.json").is_file() and json.loads((out / "manifest.json").read_text())["finished"] is True
    assert {path.name: path.read_bytes() for path in sorted((out / "masks").iterdir())} == earlier


ZOMBIE_LEADER = """
import ctypes, sys, threading, time
threading.Thread(target=lambda: time.sleep(120)).start()
print("ready", flush=True)
ctypes.CDLL(None).pthread_exit(None)  # the first thread exits; the other, and the namespace, live on
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mount namespaces need Linux's unshare")
def test_a_mount_of_a_namespace_whose_first_thread_has_exited_is_seen(tmp_path):
    """A namespace held by a process whose first thread had exited (the others running on) was missed: the kernel
    gives no ns/mnt nor mountinfo for that thread, and a run replaced the file mounted at keys.npy there, exit 0
    (forty-seventh hostile round)."""
    import shlex
    import shutil
    import subprocess
    import time

    from xmempp.errors import XMemPPError
    from xmempp.outputs import HeldFolder

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keys.npy").write_bytes(b"")
    (tmp_path / "theirs.npy").write_bytes(b"theirs")
    mount = f"mount --bind {shlex.quote(str(tmp_path / 'theirs.npy'))} {shlex.quote(str(tmp_path / 'out' / 'keys.npy'))}"
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               f"{mount} && exec {shlex.quote(sys.executable)} -c {shlex.quote(ZOMBIE_LEADER)}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if holder.stdout.readline().strip() != "ready":
            pytest.skip(f"a mount namespace of its own is not allowed here ({holder.stderr.read().strip()})")
        deadline = time.monotonic() + 10
        while "Z" not in Path(f"/proc/{holder.pid}/status").read_text().split("State:")[1][:4]:
            assert time.monotonic() < deadline, "the first thread did not exit"
            time.sleep(0.05)
        with HeldFolder(tmp_path / "out") as folder, pytest.raises(XMemPPError, match="mount point of another mount "
                                                                                      "namespace"), \
                folder.atomic_file("keys.npy") as file:
            file.write(b"new keys")
    finally:
        holder.kill()
        holder.wait()
    assert sorted(os.listdir(tmp_path / "out")) == ["keys.npy"]


def test_a_folder_goes_by_the_device_its_mount_table_lists_as_well_as_its_own(tmp_path, monkeypatch):
    """btrfs gives each subvolume a device number no table of mounts lists: another namespace's mounts there were
    filtered out as on another file system, and a session's removal took one away (fifty-second hostile round)."""
    import os

    from xmempp import mounts

    descriptor = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        listed = mounts.devices_of(descriptor)
        real_fstat = os.fstat
        monkeypatch.setattr(mounts.os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:2], 424242,
                                                                           *real_fstat(fd)[3:])))
        assert mounts.devices_of(descriptor) == {424242} | listed  # its own, and the table's
    finally:
        os.close(descriptor)


@pytest.mark.parametrize("spelled", ["absolute", "relative", "through a link", "bound below the upper folder",
                                     "at the overlay's top"])
def test_a_mount_another_namespace_makes_on_an_overlays_upper_folder_is_found_and_never_removed(tmp_path, spelled):
    """A container's root is an overlay: its files are written to an upper folder on another file system, and a
    folder removed through the overlay is removed there, where the system detaches every mount another namespace
    made on it. A tmpfs mounted on the upper folder of a session's frames was lost with its only file when the tab
    closed, and uploads/ was not refused (fifty-third hostile round)."""
    import shutil
    import subprocess

    from tests.helpers import another_mount_namespace
    from xmempp.mounts import mount_within, other_namespaces_tables, remove_tree

    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("overlays need Linux")
    lower, upper, work, merged = (tmp_path / name for name in ("lower", "upper", "work", "merged"))
    for folder in (lower, upper, work, merged):
        folder.mkdir()
    (tmp_path / "link").symlink_to(tmp_path)
    options = {"absolute": f"lowerdir={lower},upperdir={upper},workdir={work}",  # the tables keep the mounter's
               "relative": "lowerdir=lower,upperdir=upper,workdir=work",  # spelling (fifty-fifth round)
               "through a link": f"lowerdir={lower},upperdir={tmp_path / 'link' / 'upper'},workdir={work}",
               "bound below the upper folder": f"lowerdir={lower},upperdir={upper},workdir={work}",
               "at the overlay's top": f"lowerdir={lower},upperdir={upper},workdir={work}"}[spelled]
    done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], capture_output=True,
                          cwd=tmp_path)
    if done.returncode != 0:
        pytest.skip(f"an overlay mount is not allowed here ({done.stderr.decode().strip()})")
    try:
        (merged / "session" / "frames").mkdir(parents=True)
        (merged / "session" / "frames" / "00000.jpg").write_bytes(b"a frame")
        (merged / "neighbour").mkdir()
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        # that namespace reaches the upper folder's `session` through a bind mount of it elsewhere: the mount
        # point's path does not end as the folder's, its place in the file system does (fifty-sixth round)
        bound = tmp_path / "elsewhere"
        bound.mkdir()
        binds = {"bound below the upper folder": [(upper / "session", bound), (theirs, bound / "frames")],
                 # a work root made at the overlay's top: the folder holding the mount point is the upper folder
                 # itself, whose path ends as no folder of the overlay (fifty-seventh round, F1)
                 "at the overlay's top": [(theirs, upper / "session")]}.get(spelled,
                                                                         [(theirs, upper / "session" / "frames")])
        point = str(binds[-1][1])
        kept = "session" if spelled == "at the overlay's top" else "session/frames"
        with another_mount_namespace(*binds) as pid:
            elsewhere = other_namespaces_tables()
            assert mount_within(merged / "session", elsewhere, here=False) == point
            assert mount_within(merged / "neighbour", elsewhere, here=False) is None
            # the upper folder of `session/frames` itself is the mount point (fifty-fifth round, F2)
            assert mount_within(merged / kept, elsewhere, here=False) == point
            root = os.open(merged, os.O_RDONLY | os.O_DIRECTORY)
            try:
                assert remove_tree("session", root) == [kept]
                assert remove_tree("neighbour", root) == []
            finally:
                os.close(root)
            assert point in Path(f"/proc/{pid}/mountinfo").read_text()  # still there
        assert not (merged / "neighbour").exists()
    finally:
        subprocess.run(["umount", "-l", str(merged)], check=True)


def test_a_folder_another_namespace_mounts_something_at_is_told_as_holding_a_mount(tmp_path):
    """A file system another namespace mounted at uploads/ itself (not inside it) took the uploads meant for it,
    each answered 200 (fifty-fifth hostile round, F2)."""
    from tests.helpers import another_mount_namespace
    from xmempp.mounts import mount_within, other_namespaces_tables

    (tmp_path / "uploads").mkdir()
    (tmp_path / "theirs").mkdir()
    with another_mount_namespace((tmp_path / "theirs", tmp_path / "uploads")):
        assert mount_within(tmp_path / "uploads", other_namespaces_tables(), here=False) == str(tmp_path / "uploads")
        assert mount_within(tmp_path / "theirs", other_namespaces_tables(), here=False) is None


def test_a_mount_point_deep_in_names_at_an_overlays_top_is_looked_for_along_folders_that_are_there(tmp_path,
                                                                                                  monkeypatch):
    """Each start of a path whose names are all at the overlay's top (t/t/t/...) was spelled out to its end: one
    mount point 1400 folders deep took minutes to place and held every run of the app (fifty-seventh round, F2).
    A start is given up at its first folder that is not there, and a folder is looked for once."""
    from xmempp import mounts

    merged = tmp_path / "merged"
    (merged / "t" / "t").mkdir(parents=True)
    reach = mounts.OverlayReach([mounts.Mount(1, 0, 0, "/", str(merged), "overlay")], [])
    looks = []
    real_lstat = os.lstat
    # os.lstat is patched for the whole process: only the looks into this overlay count (another test's thread may
    # look elsewhere meanwhile).
    monkeypatch.setattr(mounts.os, "lstat", lambda path, *args, **kwargs: (
        str(path).startswith(str(merged)) and looks.append(path)) or real_lstat(path, *args, **kwargs))
    deep = "/elsewhere" + "/t" * 1400
    assert sorted(reach.folders_ending_as(deep)) == [f"{merged}/t", f"{merged}/t/t"]
    assert sorted(looks) == [f"{merged}/t", f"{merged}/t/t", f"{merged}/t/t/t"]  # each folder once
    reach.folders_ending_as(deep)
    assert len(looks) == 3  # the second time, from what was found the first
