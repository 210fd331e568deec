"""Where other file systems are mounted, bind mounts included: a folder xmempp removes whole must not hold one.

Removing a tree (shutil.rmtree) enters every folder mounted in it and empties it: a user's folder bind-mounted
there is deleted. stat cannot tell a bind mount of a folder on the same file system from a plain folder, so the
kernel's table of mounts is read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MOUNT_TABLE = Path("/proc/self/mountinfo")


def mount_points(table: Path = MOUNT_TABLE) -> set[str]:
    """Every mount point of this system; empty where the table cannot be read (not Linux)."""
    try:
        lines = table.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return set()
    # the fifth field; the kernel writes a space, a tab, a newline and a backslash in names as \040 \011 \012 \134
    return {re.sub(r"\\([0-7]{3})", lambda code: chr(int(code.group(1), 8)), line.split(" ")[4])
            for line in lines if line.count(" ") >= 4}


def mounted_in(folder: Path, mounts: set[str] | None = None) -> str | None:
    """A mount point that is `folder` or lies inside it (its real path), or None."""
    real = os.path.realpath(folder)
    if os.path.ismount(folder):
        return real
    mounts = mount_points() if mounts is None else mounts
    return next((m for m in sorted(mounts) if m == real or m.startswith(real.rstrip(os.sep) + os.sep)), None)
