"""Where other file systems are mounted, bind mounts included: a folder xmempp removes whole must not hold one.

Removing a tree (shutil.rmtree) enters every folder mounted in it and empties it: a user's folder bind-mounted
there is deleted. stat cannot tell a bind mount of a folder on the same file system from a plain folder, so the
kernel's table of mounts is read.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

MOUNT_TABLE = Path("/proc/self/mountinfo")


def mount_points(table: Path = MOUNT_TABLE) -> set[str] | None:
    """Every mount point of this system; None where Linux's table cannot be read (no /proc in a sandbox), and
    empty on systems without one, which have no bind mounts of that kind."""
    try:
        lines = table.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return None if sys.platform.startswith("linux") else set()
    # the fifth field; the kernel writes a space, a tab, a newline and a backslash in names as \040 \011 \012 \134
    mounts = {re.sub(r"\\([0-7]{3})", lambda code: chr(int(code.group(1), 8)), line.split(" ")[4])
              for line in lines if line.count(" ") >= 4}
    return mounts if "/" in mounts else None  # no real table lacks the root: an empty one said "no mounts"


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
    return None if inside is None else f"it holds a mount point ({inside})"
