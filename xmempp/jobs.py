"""Running one function per video with a network built once per worker: in this process, in order.

`xmempp.ray_runner` runs the same jobs across machines and chooses between the two (`run_jobs`); both report
a video that fails as a `JobFailure` with a one-line reason, and the other videos go on. This module does not
import it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from xmempp.errors import XMemPPError, file_system_problem, is_out_of_memory
from xmempp.model.network import XMem

log = logging.getLogger(__name__)

Job = TypeVar("Job")
Result = TypeVar("Result")
VideoFunction = Callable[[XMem, Job], Result]


@dataclass(frozen=True)
class NetworkSpec:
    """What each worker builds its network from: a weights file, a device (None: CUDA when present), and the
    number of PyTorch CPU threads (None: PyTorch's default, which Ray sets to the worker's CPUs).

    On CPU, sums split over another number of threads round differently: masks are byte-identical between
    runs with the same thread count, and may differ in a few boundary pixels otherwise.
    """

    weights: Path | None  # None: $XMEMPP_WEIGHTS, then weights/XMem.pth, downloaded if missing
    device: str | None = None
    threads: int | None = None

    def with_weights_found(self, progress: bool = True) -> NetworkSpec:
        """The same spec with the weights file found (or downloaded) here, before any worker starts."""
        from xmempp.model.weights import ensure_weights

        return replace(self, weights=ensure_weights(self.weights, progress=progress).resolve())

    def weights_here(self) -> Path | None:
        """The weights file these weights are, found without a download; None when not found (said when the
        network is built)."""
        from xmempp.model.weights import find_weights

        try:
            found = find_weights(self.weights)
        except XMemPPError:
            return None
        return None if found is None else Path.cwd() / found  # absolute: Ray's workers start in their head's folder

    def build(self) -> XMem:
        import torch

        from xmempp.model.weights import load_network

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        return load_network(self.weights, self.device)


@dataclass(frozen=True)
class JobFailure:
    """A video that could not be processed, and why (one line)."""

    reason: str


def run_safely(function: VideoFunction, network: XMem, job: Job) -> Result | JobFailure:
    """`function(network, job)`, or the failure's one-line reason: a broken video never stops the others."""
    try:
        return function(network, job)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:
        if not is_users_problem(error):  # a bug: its traceback goes where an operator sees it
            log.error("job %s failed with an unexpected error, a bug in xmempp", getattr(job, "name", job),
                      exc_info=True)
        return JobFailure(one_line_reason(error))


def is_users_problem(error: BaseException) -> bool:
    """Whether `error` is a problem with the input or the machine that its message explains (not a bug)."""
    return (isinstance(error, (XMemPPError, FileNotFoundError)) or file_system_problem(error) is not None
            or is_out_of_memory(error))


def one_line_reason(error: BaseException) -> str:
    message = " ".join(str(error).split())
    if is_out_of_memory(error) and not isinstance(error, XMemPPError):  # the loader's or numpy's words alone
        return f"out of memory ({message})" if message else "out of memory"  # never said what ran short
    if is_users_problem(error) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def run_locally(jobs: Iterable[Job], function: VideoFunction, network: XMem | NetworkSpec
                ) -> Iterator[tuple[Job, Result | JobFailure]]:
    """Yield (job, result) for each job, in order, all with one network (this process's thread count restored after)."""
    import torch

    threads = torch.get_num_threads()
    try:
        network = network.build() if isinstance(network, NetworkSpec) else network
        for job in jobs:
            yield job, run_safely(function, network, job)
    finally:
        torch.set_num_threads(threads)
