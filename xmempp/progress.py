"""Progress bars for the command line and the Python API."""

from __future__ import annotations

from tqdm import tqdm


class ProgressBar(tqdm):
    """tqdm without its monitor thread, which tqdm starts with the first bar, shown or not.

    That thread only corrects `miniters` for a bar that stalls, which no bar here sets; and starting it waits for
    ever when the thread dies before it runs, out of memory under an address-space limit (see background.py).
    """

    monitor_interval = 0
