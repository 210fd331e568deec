"""Whether the hosts that weights are downloaded from answer, decided within about a second.

Without a network, a download would otherwise be found impossible only after its own retries (Hugging Face's
hub retries for about 25 seconds before giving up). One TCP connection to each host, all at once, with a
deadline, tells an offline machine apart at once; a configured proxy is asked instead of the host.
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DEADLINE_S = 1.5  # the most an offline start waits to find out that it is offline


def reachable(urls: Iterable[str], deadline: float = DEADLINE_S) -> dict[str, bool]:
    """For each URL, whether its host (or the proxy configured for its scheme) accepted a connection before the
    deadline. Checks run at once; one that has not answered by then counts as unreachable and is left behind."""
    urls = list(dict.fromkeys(urls))
    if not urls:
        return {}
    pool = ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="xmempp-online")
    try:
        checks = {url: pool.submit(_connects, url, deadline) for url in urls}
        done, _ = wait(checks.values(), timeout=deadline)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a name lookup that hangs never holds the caller
    answers = {url: check in done and check.result() for url, check in checks.items()}
    for url, answered in answers.items():
        if not answered:
            log.info("%s did not answer within %.1f s: treated as offline", _host(url), deadline)
    return answers


def _connects(url: str, timeout: float) -> bool:
    try:
        parts = urlsplit(urllib.request.getproxies().get(urlsplit(url).scheme) or url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not parts.hostname:
            return False
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _host(url: str) -> str:
    return urlsplit(url).hostname or url
