"""`python -m xmempp.ray_reaper DRIVER_PID`: removes what a local Ray left once the process that started it ends.

Ray ties its head processes (GCS, raylet, monitors) to the driver with the kernel's parent-death signal, but
its dashboard and runtime-env agents outlive a killed driver (about 170 MB): on the raylet's death each tries
to report it to the GCS, which is gone, and waits forever. This watcher runs in its own session (a signal
to the driver's process group spares it) and reads its standard input, a pipe from the driver: while the
driver lives it notes the driver's descendants every half second; when the pipe closes (the driver ended
in any way, killed included) it kills those that are still running. Linux only (it reads /proc).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from pathlib import Path

POLL_SECONDS = 0.5


def process_start(pid: int) -> int | None:
    """When the process `pid` started (clock ticks since boot): with the pid, an identity that is never reused."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22 of stat, counted after the command name


def is_rays(pid: int) -> bool:
    """Whether the process runs a part of Ray (`.../site-packages/ray/...`, or a title like `ray::DashboardAgent`)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return command.startswith(b"ray::") or b"/ray/" in command


def descendants(root: int) -> dict[int, int]:
    """{pid: start} of the processes Ray started below `root` (its children that run Ray, and everything below
    them), from the parent pids in /proc. Other children of `root`, this watcher among them, are left alone."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: dict[int, int] = {}
    waiting = [pid for pid in children.get(root, []) if pid != os.getpid() and is_rays(pid)]
    while waiting:
        pid = waiting.pop()
        start = process_start(pid)
        if start is not None and pid not in found:
            found[pid] = start
            waiting.extend(children.get(pid, []))
    return found


def watch(driver: int) -> dict[int, int]:
    """Note the driver's descendants until standard input closes; returns all that were seen."""
    seen: dict[int, int] = {}
    while True:
        seen.update(descendants(driver))
        readable, _, _ = select.select([sys.stdin], [], [], POLL_SECONDS)
        if readable and not os.read(sys.stdin.fileno(), 4096):
            return seen


def reap(processes: dict[int, int]) -> None:
    """Kill each process that is still the one that was seen (same pid, same start)."""
    for pid, start in processes.items():
        if process_start(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main() -> None:
    driver = int(sys.argv[1])
    reap(watch(driver))


if __name__ == "__main__":
    main()
