"""Where other file systems are mounted, bind mounts included: a folder xmempp removes whole must not hold one.

Removing a tree (shutil.rmtree) enters every folder mounted in it and empties it: a user's folder bind-mounted
there is deleted. stat cannot tell a bind mount of a folder on the same file system from a plain folder, so the
kernel's table of mounts is read before; and `remove_tree`, which removes xmempp's own folders, never enters a
folder whose mount differs from its parent's, whenever it was mounted (a check made before is not enough: a
mount made after it, inside an export's staging folder or a run's frames, was emptied).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import NamedTuple

MOUNT_TABLE = Path("/proc/self/mountinfo")


def mount_points(table: Path = MOUNT_TABLE) -> set[str] | None:
    """Every mount point of this system; None where Linux's table cannot be read (no /proc in a sandbox), and
    empty on systems without one, which have no bind mounts of that kind."""
    try:
        mounts = {mount.point for mount in _mount_table(table)}
    except OSError:
        return None if sys.platform.startswith("linux") else set()
    return mounts if "/" in mounts else None  # no real table lacks the root: an empty one said "no mounts"


def mounts_elsewhere(devices: Collection[int], proc: Path = Path("/proc")) -> frozenset[tuple[int, int, str]]:
    """Where the other mount namespaces this process can look into (containers, `unshare -m`) mount something on a
    file system of `devices` (st_dev), as (device, inode, name): the folder each mount point lies in, as this
    process reaches that folder, and the mount point's name in it. The system lets this process remove or replace
    a mount point of another namespace, and detaches the mount with all it holds; no table of this namespace lists
    them, and a folder shared with a container (a volume) holds them under its plain path here. Each namespace's
    table is read through a process in it, and each folder is reached through that process's root, so that the
    folder is told as this process sees it whatever that namespace's root is. Only folders on `devices` are looked
    at (the table tells each mount's device): a look into a hung network or FUSE mount of a container hung every
    run. Empty where /proc cannot be read."""
    found = set()
    try:
        this_table = _mount_table(MOUNT_TABLE)
    except OSError:
        this_table = []
    overlays = [mount for mount in this_table if mount.kind == "overlay" and mount.device in devices]
    reach = OverlayReach(overlays, this_table) if overlays else None
    for through, table in other_namespaces_tables(proc):
        by_id = {mount.id: mount for mount in table}
        for mount in table:
            parent = by_id.get(mount.parent)
            if mount.point == "/" or parent is None:
                continue
            folder, name = os.path.split(mount.point)
            if parent.device in devices:
                reached = [f"{through / 'root'}{folder}"]
            elif reach is not None:  # perhaps on an overlay's upper folder: that folder as the overlay shows it,
                # by the mount point's path, or by its place in its file system (reached through a bind mount of a
                # folder inside the upper folder, the part above is in its parent's root: fifty-sixth round)
                places = {folder}
                if _is_below(mount.point, parent.point):
                    places.add(os.path.dirname(_within_file_system(parent, mount.point)))
                reached = sorted({path for place in places for path in reach.folders_holding(place, name)})
            else:
                continue
            for path in reached:
                with contextlib.suppress(OSError, ValueError):
                    status = os.stat(path)
                    found.add((status.st_dev, status.st_ino, name))
    return frozenset(found)


def names_in(folder: int) -> list[str]:
    """The names in the open folder `folder`, read through a fresh opening of it ("." from it, so the same folder
    whatever its path now leads to): on btrfs a folder opened before names were made in it lists none of them (its
    last index is read when it is opened), and a server's work root, held open from its start, was left at exit
    with all its uploads (fifty-second hostile round)."""
    fresh = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
    try:
        return os.listdir(fresh)
    finally:
        os.close(fresh)


def devices_of(descriptor: int) -> set[int]:
    """The device numbers the folder open at `descriptor` goes by, for `mounts_elsewhere`: its own (st_dev) and the
    one the tables of mounts list its file system under, where they differ: btrfs gives each subvolume a number of
    its own, which no table lists, and another namespace's mount point there was removed (fifty-second round)."""
    devices = {os.fstat(descriptor).st_dev}
    with contextlib.suppress(OSError):
        mount_id = _mount_id(descriptor)
        devices |= {mount.device for mount in _mount_table(MOUNT_TABLE) if mount.id == mount_id}
    return devices


def other_namespaces_tables(proc: Path = Path("/proc")) -> list[tuple[Path, list[Mount]]]:
    """The mount table of each other mount namespace this process can look into, with the /proc entry of a process
    in it (through which that namespace's paths are reached, `mount_within`). Empty where /proc cannot be read."""
    try:
        seen = {os.stat(proc / "self" / "ns" / "mnt").st_ino}
        processes = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return []
    tables = []
    for pid in processes:
        through = _live_thread(proc / pid)
        if through is None:
            continue
        try:
            namespace = os.stat(through / "ns" / "mnt").st_ino
            if namespace in seen:
                continue
            seen.add(namespace)
            tables.append((through, _mount_table(through / "mountinfo")))
        except OSError:  # gone meanwhile, or not this user's to look into
            continue
    return tables


def mount_within(folder: Path, elsewhere: Sequence[tuple[Path, list[Mount]]] = (), here: bool = True) -> str | None:
    """A mount point at `folder` or inside it, at any depth, as its namespace spells it: of this mount namespace, or
    of one of `elsewhere` (`other_namespaces_tables`); None when there is none, or where the tables cannot be read.
    `here=False` looks at `elsewhere` alone.

    Told from the tables alone, by where each mount point lies within its file system: the folder it lies on (its
    parent mount's root) and its path below that mount. `folder` is placed in its file system the same way, from
    the mount holding it here. Nothing is walked or looked up: a look into each entry of a folder of ten thousand
    took a second, and a look above each of thousands of mount points held every request for seconds (forty-ninth
    and fiftieth hostile rounds), and a path through a hung network mount would hang."""
    try:
        this_table = _mount_table(MOUNT_TABLE)
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # no /proc (not Linux, a sandbox), or no folder: no mount to be told
        return None
    try:
        holder_id = _mount_id(descriptor)
    finally:
        os.close(descriptor)
    holder = next((mount for mount in this_table if mount.id == holder_id), None)
    real = os.path.realpath(folder)
    if holder is None or not _is_below(real, holder.point, or_at=True):
        return None
    inside = _within_file_system(holder, real)
    # The tables' own device numbers are compared: on btrfs a folder's st_dev is its subvolume's, never the one its
    # mounts are listed under, and nothing mounted in it was seen (fifty-first hostile round). On an overlay the
    # folder is also in its upper folder, told by its path's end (`OverlayReach`).
    overlay = holder.kind == "overlay"
    for table in ([this_table] if here else []) + [table for _, table in elsewhere]:
        by_id = {mount.id: mount for mount in table}
        for mount in table:
            parent = by_id.get(mount.parent)
            if parent is None or not _is_below(mount.point, parent.point):
                continue
            # at `folder` itself too: another namespace's mount there took the uploads meant for it (fifty-fifth round)
            if parent.device == holder.device and _is_below(_within_file_system(parent, mount.point), inside,
                                                            or_at=True):
                return mount.point
            if overlay and parent.device != holder.device and (
                    _ends_below(mount.point, inside) or _ends_below(_within_file_system(parent, mount.point), inside)):
                return mount.point
    return None


class OverlayReach:
    """The folders of this namespace's overlays (of some devices) that another namespace's mount point may lie in
    as it reaches them through the overlays' upper folders.

    A folder removed through an overlay is removed from its upper folder, and the system detaches every mount another
    namespace made on that folder there (a container's root is an overlay: a tmpfs mounted on the upper folder of a
    session's frames was lost with its files, fifty-third hostile round). Where that upper folder lies cannot be told
    from the tables: they keep its path as the mounter spelled it (relative, through a link, with escapes, or moved
    since: fifty-fifth round). So a folder there is told by its path's end: a mount point whose folder's path ends
    as the path of a folder of the overlay does (from one of its names at the overlay's top on), as the app's own
    folders' random names make sure; and a mount point named as an entry at the overlay's top may lie in the upper
    folder itself (a work root made at an overlay's top, fifty-seventh round). Only folders reached without crossing
    a mount of this namespace are looked at, so no look enters a hung network mount."""

    def __init__(self, overlays: list[Mount], table: Sequence[Mount]):
        self.overlays = []
        for overlay in overlays:
            try:
                tops = set(os.listdir(overlay.point))
            except OSError:
                continue
            below = {mount.point for mount in table if _is_below(mount.point, overlay.point)}
            self.overlays.append((overlay.point.rstrip("/"), tops, below))
        self._found: dict[str, list[str]] = {}

    def folders_holding(self, folder: str, name: str) -> list[str]:
        """The paths here, through the overlays, of the folders that may be `folder` holding the mount point `name`:
        those whose path ends as `folder`'s does, and the overlay's top where `name` is an entry of it."""
        found = list(self.folders_ending_as(folder))
        for point, tops, _ in self.overlays:
            if name in tops:
                found.append(point or "/")
        return found

    def folders_ending_as(self, folder: str) -> list[str]:
        """The paths here, through the overlays, of the folders whose path ends as `folder`'s does. Each start is
        walked down one folder at a time and given up at the first that is not there: a path of a thousand names
        that are each at the overlay's top (t/t/t/...) cost minutes when every start's every step was spelled out
        (fifty-seventh round); and the same folder is looked for once."""
        if folder not in self._found:
            parts = folder.strip("/").split("/")
            is_folder: dict[str, bool] = {}
            self._found[folder] = [reached for point, tops, below in self.overlays
                                   for start, name in enumerate(parts) if name in tops
                                   if (reached := _walked(point, parts[start:], below, is_folder)) is not None]
        return self._found[folder]


def _walked(point: str, names: list[str], below: set[str], is_folder: dict[str, bool]) -> str | None:
    """`point`/`names...` when each folder on the way is there (a folder, not a link) and none is a mount point of
    `below`. `is_folder` keeps what each path was found to be, so that starts which share their first folders
    (t/t/t/...) look each one up once."""
    path = point
    for name in names:
        path = f"{path}/{name}"
        if path not in is_folder:
            try:
                is_folder[path] = path not in below and stat.S_ISDIR(os.lstat(path).st_mode)
            except OSError:
                is_folder[path] = False
        if not is_folder[path]:
            return None
    return path


def _ends_below(point: str, inside: str) -> bool:
    """Whether the mount point `point` lies at or below a folder whose path ends as `inside` does
    (`OverlayReach`)."""
    wanted = inside.strip("/").split("/")
    parts = point.strip("/").split("/")
    if not wanted or wanted == [""]:
        return False
    return any(parts[start:start + len(wanted)] == wanted for start in range(len(parts) - len(wanted) + 1))


def _within_file_system(mount: Mount, path: str) -> str:
    """Where `path`, below the mount point of `mount`, lies in the file system mounted there."""
    return mount.root.rstrip("/") + "/" + path[len(mount.point):].strip("/")


def _is_below(path: str, folder: str, or_at: bool = False) -> bool:
    folder = folder.rstrip("/")
    return path.startswith(folder + "/") or (or_at and path == (folder or "/"))


def _live_thread(process: Path) -> Path | None:
    """Where a process's namespace and table can be read: /proc/PID itself, or, where its first thread has exited
    and the others run on (a zombie leader, whose ns and mountinfo the kernel no longer gives), one of theirs,
    /proc/PID/task/TID: a namespace held by such a process alone was missed, and its mount replaced (forty-seventh
    hostile round). None when no thread of it can be read."""
    try:
        os.stat(process / "ns" / "mnt")
        return process
    except OSError:
        pass
    try:
        threads = sorted(os.listdir(process / "task"))
    except OSError:
        return None
    for thread in threads:
        with contextlib.suppress(OSError):
            os.stat(process / "task" / thread / "ns" / "mnt")
            return process / "task" / thread
    return None


class Mount(NamedTuple):
    """One line of a table like /proc/self/mountinfo."""

    id: int
    parent: int  # the id of the mount its point lies on
    device: int  # st_dev of what is mounted
    root: str  # the folder of that file system mounted here (a bind mount's source, within its file system)
    point: str  # where it is mounted, as its namespace spells it
    kind: str = ""  # the file system's type (ext4, overlay, ...)


def _unescaped(field: str) -> str:
    """A name as the kernel writes it in a table of mounts, where a space, a tab, a newline and a backslash are
    \\040 \\011 \\012 \\134."""
    return re.sub(r"\\([0-7]{3})", lambda code: chr(int(code.group(1), 8)), field) if "\\" in field else field


def _mount_table(table: Path) -> list[Mount]:
    """Each mount of a table like /proc/self/mountinfo."""
    mounts = []
    for line in table.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        fields = line.split(" ")
        if len(fields) < 5 or not fields[0].isdigit() or not fields[1].isdigit() or fields[2].count(":") != 1:
            continue
        major, minor = fields[2].split(":")
        root, point = (_unescaped(field) for field in fields[3:5])
        kind = fields[fields.index("-", 5) + 1] if "-" in fields[5:-1] else ""  # after the optional fields
        with contextlib.suppress(ValueError):
            mounts.append(Mount(int(fields[0]), int(fields[1]), os.makedev(int(major), int(minor)), root, point,
                                kind))
    return mounts


def mount_risk(folder: Path, mounts: set[str] | None = None) -> str | None:
    """Why `folder` may not be removed whole, in words: it is or holds a mount point, or that cannot be told;
    None when it may. `mounts`: `mount_points()`, read once for many folders (read here when None)."""
    real = os.path.realpath(folder)
    mounts = mount_points() if mounts is None else mounts
    if os.path.ismount(folder) or (mounts is not None and real in mounts):  # a bind mount only the table shows
        return f"it is a mount point ({real})"
    if mounts is None:
        return f"whether a file system is mounted in it cannot be told ({MOUNT_TABLE} cannot be read)"
    inside = next((m for m in sorted(mounts) if m.startswith(real.rstrip(os.sep) + os.sep)), None)
    if inside is not None:
        return f"it holds a mount point ({inside})"
    inside = _mount_point_of_another_namespace(folder)
    if inside == os.fspath(folder):
        return f"it is a mount point ({inside}, mounted in another mount namespace)"
    return None if inside is None else f"it holds a mount point ({inside}, mounted in another mount namespace)"


def _mount_point_of_another_namespace(folder: Path) -> str | None:
    """`folder` when it is a mount point of another mount namespace, or else the first such mount point in it: one
    `mounts_elsewhere` lists (a container's mount in a folder shared with it), or, where `folder` lies on a mount of
    another namespace (reached through /proc/PID/root), one its mount ids tell. Those mounts are not in this
    process's table, and the system lets this process remove them (it detaches them, with all they hold). None
    when there is none."""
    here = _mount_ids_here()
    try:
        parent = os.open(Path(folder).parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        elsewhere = mounts_elsewhere(devices_of(parent))
        foreign = here is not None and _mount_id(parent) not in here
        if not foreign and not elsewhere:
            return None
        if _is_mount_point_elsewhere(Path(folder).name, parent, foreign, elsewhere):
            return os.fspath(folder)
        top = os.open(Path(folder).name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        stack = [(top, os.fspath(folder), _names_in(top))]
    except OSError:  # nothing that cannot be read is removed: the removal leaves it, as it leaves a mount
        return None
    finally:
        os.close(parent)
    try:
        while stack:
            current, path, names = stack[-1]
            if not names:
                os.close(stack.pop()[0])
                continue
            name = names.pop()
            if _is_mount_point_elsewhere(name, current, foreign, elsewhere):
                return os.path.join(path, name)
            if (inner := _opened_unless_mounted(name, current)) is not None:
                stack.append((inner, os.path.join(path, name), _names_in(inner)))
        return None
    finally:
        for current, *_ in stack:
            os.close(current)


def _is_mount_point_elsewhere(name: str, folder: int, foreign: bool, elsewhere: frozenset[tuple[int, int, str]]
                              ) -> bool:
    """Whether the entry `name` of the open `folder` is a mount point of another namespace: listed in `elsewhere`,
    or (`foreign`: the folder is on another namespace's mount) told by its mount id, or not told at all."""
    return _listed_elsewhere(name, folder, elsewhere) or (foreign and mounted_at(name, folder) is not False)


def _mount_ids_here(table: Path = MOUNT_TABLE) -> set[int] | None:
    """The ids of this mount namespace's mounts; None where its table cannot be read."""
    try:
        return {mount.id for mount in _mount_table(table)}
    except OSError:
        return None


def remove_tree(name: str, dir_fd: int, spare: Callable[[str, os.stat_result], bool] | None = None) -> list[str]:
    """Remove the entry `name` of the open folder `dir_fd`, and all in it: links, not what they lead to; never a
    folder (or file) mounted there, nor what is in it. Returns the mount points left, as paths below `dir_fd`'s
    folder (`name/...`); the folders holding them stay too. `spare(path, is_folder)`: whether an entry in it (its
    path as returned, and its `os.lstat`) stays, with the folders holding it, asked as the walk meets it. Walks with open folders,
    without recursion (Python 3.11's rmtree recursed too deep on nested folders); other file system problems raise
    OSError."""
    left: list[str] = []
    spared: list[str] = []
    elsewhere = mounts_elsewhere(devices_of(dir_fd))
    try:
        status = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return left
    if not stat.S_ISDIR(status.st_mode):
        _unlink(name, dir_fd, name, left, elsewhere)
        return left
    top = _enter(name, dir_fd, name, left, elsewhere)
    if top is None:
        return left
    stack = [top]  # each: the open folder, its parent, its name there, its path below `dir_fd`, names left to do
    try:
        while stack:
            folder, parent, entry, path, names = stack[-1]
            if names:
                child = names.pop()
                try:
                    status = os.lstat(child, dir_fd=folder)
                except FileNotFoundError:
                    continue
                if spare is not None and spare(f"{path}/{child}", status):
                    spared.append(f"{path}/{child}")
                elif not stat.S_ISDIR(status.st_mode):
                    _unlink(child, folder, f"{path}/{child}", left, elsewhere)
                elif (inner := _enter(child, folder, f"{path}/{child}", left, elsewhere)) is not None:
                    stack.append(inner)
                continue
            stack.pop()
            os.close(folder)
            if not any(kept.startswith(path + "/") for kept in (*left, *spared)):
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(entry, dir_fd=parent)
    finally:
        for folder, *_ in stack:
            os.close(folder)
    return left


def first_removed_with(names: Sequence[str | Path], dir_fd: int | None, wanted: Collection[tuple[int, int]]
                       ) -> tuple[tuple[int, int], str | Path] | None:
    """The first of `wanted` ((device, inode) pairs) that `remove_tree` of every one of `names` (entries of the
    folder `dir_fd`; paths when it is None) would take, with the name it lies in: a folder below one, or a file
    every name (hard link) of which lies below them, in one or spread over several; None when none would go.
    Walked as remove_tree walks: through open folders, without recursion, following no link and entering no
    mount, so that a folder past PATH_MAX or a thousand levels deep is looked through too (os.walk skipped the
    first, silently, and recursed too deep on the second). OSError when a folder in them cannot be read: what
    it holds cannot be told."""
    names_below: Counter = Counter()
    for name in names:
        try:
            top = os.open(name, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):  # nothing there, or a link: nothing goes
                continue
            raise
        stack = [(top, _names_in(top))]
        try:
            while stack:
                folder, children = stack[-1]
                if not children:
                    os.close(stack.pop()[0])
                    continue
                child = children.pop()
                try:
                    status = os.lstat(child, dir_fd=folder)
                except FileNotFoundError:
                    continue
                key = (status.st_dev, status.st_ino)
                if key in wanted:
                    names_below[key] += 1
                    if stat.S_ISDIR(status.st_mode) or names_below[key] >= status.st_nlink:
                        return key, name
                if stat.S_ISDIR(status.st_mode) and (inner := _opened_unless_mounted(child, folder)) is not None:
                    stack.append((inner, _names_in(inner)))
        finally:
            for folder, _ in stack:
                os.close(folder)
    return None


def _names_in(folder: int) -> list[str]:
    try:
        return os.listdir(folder)
    except BaseException:
        os.close(folder)
        raise


def _opened_unless_mounted(name: str, parent: int) -> int | None:
    """The folder `name` of `parent`, opened; None when it is gone, a link by now, or a mount (never entered)."""
    try:
        folder = os.open(name, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0), dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            return None
        raise
    if mounted_apart(folder, parent):
        os.close(folder)
        return None
    return folder


def _enter(name: str, parent: int, path: str, left: list[str], elsewhere: frozenset[tuple[int, int, str]] = frozenset()
           ) -> list | None:
    """The folder `name` of `parent`, opened, with its names; None when it is not entered: it is gone, a mount
    (noted in `left`; `elsewhere`: other namespaces' mount points, `mounts_elsewhere`), or no longer a folder (then
    unlinked: a link put there)."""
    if _listed_elsewhere(name, parent, elsewhere):
        left.append(path)
        return None
    try:
        folder = os.open(name, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0), dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        _unlink(name, parent, path, left, elsewhere)
        return None
    apart = _mounts_differ(folder, parent)
    if apart is not False:
        os.close(folder)
        try:  # a mount known is left: the system removes one of another mount namespace (reached through
            # /proc/PID/root), with all it holds; where none can be told, an empty folder may go, as the system
            # refuses to remove a mount point of this namespace (EBUSY)
            if apart:
                raise IsADirectoryError
            os.rmdir(name, dir_fd=parent)
        except OSError:
            left.append(path)
        return None
    try:
        return [folder, parent, name, path, os.listdir(folder)]
    except BaseException:
        os.close(folder)
        raise


def _unlink(name: str, dir_fd: int, path: str, left: list[str], elsewhere: frozenset[tuple[int, int, str]] = frozenset()
            ) -> None:
    """Unlink the entry `name`, unless a file is mounted there (noted in `left`): the system refuses that here
    (EBUSY), but detaches a mount of another mount namespace, with what it holds."""
    if mounted_at(name, dir_fd) or _listed_elsewhere(name, dir_fd, elsewhere):
        left.append(path)
        return
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as error:
        if error.errno != errno.EBUSY:  # a file bind-mounted there: the system keeps it, and so do we
            raise
        left.append(path)


def mounted_at(name: str, folder: int) -> bool | None:
    """Whether the entry `name` of the open folder `folder` is a mount point (a file or folder mounted there, bind
    mounts included), told by the kernel's mount ids, which hold in any mount namespace: a path compared with this
    process's table of mounts missed a mount made in another namespace and read through its /proc/PID/root. None
    where the ids cannot be read (not Linux, no /proc). A link is not followed: it is no mount point."""
    if not hasattr(os, "O_PATH"):  # O_RDONLY would open a FIFO there, and wait for a writer
        return None
    try:
        entry = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=folder)
    except FileNotFoundError:
        return False
    try:
        return _mounts_differ(entry, folder)
    finally:
        os.close(entry)


def mounted_in_another_namespace(name: str, folder: int, elsewhere: frozenset[tuple[int, int, str]]) -> bool:
    """Whether the entry `name` of the open `folder` is a mount point of another mount namespace: listed in
    `elsewhere` (`mounts_elsewhere`), or mounted there by a mount this namespace's table does not hold (reached
    through that namespace's /proc/PID/root). Replacing it (a rename onto it) detaches that mount, with all it
    holds, where a mount point of this namespace is refused by the system (EBUSY)."""
    if _listed_elsewhere(name, folder, elsewhere):
        return True
    if not hasattr(os, "O_PATH") or not mounted_at(name, folder):
        return False
    entry = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=folder)
    try:
        here = _mount_ids_here()
        return here is not None and _mount_id(entry) not in here
    finally:
        os.close(entry)


def _listed_elsewhere(name: str, folder: int, elsewhere: frozenset[tuple[int, int, str]]) -> bool:
    if not elsewhere:
        return False
    status = os.fstat(folder)
    return (status.st_dev, status.st_ino, name) in elsewhere


def mounted_apart(folder: int, parent: int) -> bool:
    """Whether the open folder `folder` is on another mount than the open folder `parent`: another device, or
    (a bind mount of a folder on the same file system) another mount id, which only /proc tells. On Linux without
    /proc every folder counts as apart: nothing is removed, as `mount_risk` refuses then."""
    apart = _mounts_differ(folder, parent)
    # Linux without /proc (a sandbox) cannot tell a bind mount: none is entered
    return apart if apart is not None else sys.platform.startswith("linux")


def _mounts_differ(folder: int, parent: int) -> bool | None:
    """`mounted_apart`, None where it cannot be told. The mount ids decide where they can be read: on overlayfs a
    file's device is its layer's, not its folder's, and every file was taken for a mount point."""
    mounts = _mount_id(folder), _mount_id(parent)
    if None not in mounts:
        return mounts[0] != mounts[1]
    return True if os.fstat(folder).st_dev != os.fstat(parent).st_dev else None


def _mount_id(descriptor: int) -> int | None:
    """The id of the mount the open file is on, from /proc/self/fdinfo (Linux 3.15 and later); None elsewhere."""
    try:
        with open(f"/proc/self/fdinfo/{descriptor}", encoding="ascii") as info:
            for line in info:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    except OSError as error:
        if error.errno in (errno.EMFILE, errno.ENFILE):  # /proc is there, but no file can be opened: not "no /proc"
            raise
    except ValueError:
        pass
    return None
