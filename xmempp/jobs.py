"""Running one function per video with a network built once per worker: in this process, in order.

The Ray runner (`xmempp.ray_runner`) runs the same jobs across machines; both report a video that fails
as a `JobFailure` with a one-line reason, and the other videos go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

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
        log.debug("job %s failed", job, exc_info=True)
        return JobFailure(one_line_reason(error))


def one_line_reason(error: BaseException) -> str:
    from xmempp.errors import XMemPPError

    message = " ".join(str(error).split())
    if isinstance(error, (XMemPPError, FileNotFoundError)) and message:
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


@dataclass(frozen=True)
class Execution:
    """Where per-video jobs run: in this process (default) or on Ray (`ray=True`, `ray_address` None: local)."""

    network: NetworkSpec
    progress: bool = True  # a progress bar if the weights are downloaded
    ray: bool = False
    ray_address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1


def run_jobs(jobs: list[Job], function: VideoFunction, execution: Execution) -> Iterator[tuple[Job, Result | JobFailure]]:
    """Yield (job, result) for every job: in order in this process, or as they finish on Ray."""
    spec = execution.network.with_weights_found(execution.progress)
    if not execution.ray:
        return run_locally(jobs, function, spec)
    from xmempp.ray_runner import run_on_ray

    return run_on_ray(jobs, function, spec, address=execution.ray_address, workers=execution.workers,
                      gpus_per_worker=execution.gpus_per_worker, cpus_per_worker=execution.cpus_per_worker)
