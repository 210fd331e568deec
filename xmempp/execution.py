"""Where per-video jobs run: in this process, in order (`xmempp.jobs`), or on Ray (`xmempp.ray_runner`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from xmempp.jobs import Job, JobFailure, NetworkSpec, Result, VideoFunction, run_locally


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
    from xmempp.ray_runner import run_on_ray  # only here: importing ray costs seconds

    return run_on_ray(jobs, function, spec, address=execution.ray_address, workers=execution.workers,
                      gpus_per_worker=execution.gpus_per_worker, cpus_per_worker=execution.cpus_per_worker)
