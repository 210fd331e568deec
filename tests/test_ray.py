"""Videos as Ray workers (a local Ray with 2 CPUs, started here): the same results as in one process, and a
worker that dies takes only its video down, retried once."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tests.tiny_datasets import write_davis
from xmempp.batch import run_batch
from xmempp.evaluate import run_evaluation
from xmempp.jobs import JobFailure, NetworkSpec
from xmempp.ray_runner import Execution

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def test_batch_on_ray_writes_the_same_masks_as_in_one_process(tmp_path, checkpoint):
    dataset = write_davis(tmp_path / "davis", {"a": 3, "b": 3})
    spec = NetworkSpec(checkpoint, threads=1)  # the same CPU threads in both, so sums round the same
    local = run_batch(dataset, tmp_path / "local", Execution(spec), size=96, progress=False)
    distributed = run_batch(dataset, tmp_path / "ray", Execution(spec, ray=True, workers=2), size=96, progress=False)
    assert [o.status for o in local] == [o.status for o in distributed] == ["done", "done"]
    for video in ("a", "b"):
        for mask in sorted((tmp_path / "local" / video / "masks").iterdir()):
            assert mask.read_bytes() == (tmp_path / "ray" / video / "masks" / mask.name).read_bytes()


def test_evaluate_on_ray_gives_the_same_scores_as_in_one_process(tmp_path, checkpoint):
    dataset = write_davis(tmp_path / "davis", {"a": 4, "b": 3}, annotated=None)
    options = dict(strategies=["xmempp", "uniform", "random"], rounds=1, k=1, size=96, progress=False,
                   min_mask_presence_percent=0)
    spec = NetworkSpec(checkpoint, threads=1)
    local = run_evaluation(dataset, tmp_path / "local", Execution(spec), **options)
    distributed = run_evaluation(dataset, tmp_path / "ray", Execution(spec, ray=True), **options)
    pd.testing.assert_frame_equal(local.per_frame, distributed.per_frame)
    assert (tmp_path / "ray" / "summary.csv").read_text() == (tmp_path / "local" / "summary.csv").read_text()


def test_a_dying_worker_takes_only_its_video_and_is_retried_once(tmp_path, checkpoint):
    from xmempp.ray_runner import run_on_ray

    died_once = tmp_path / "died-once"

    def process(network, job):
        if job == "always dies" or (job == "dies once" and not died_once.exists()):
            if job == "dies once":
                died_once.touch()
            os._exit(1)  # the worker process is gone, as after a segfault or an OOM kill
        return f"{job}: done"

    jobs = ["first", "always dies", "dies once", "last"]
    results = dict(run_on_ray(jobs, process, NetworkSpec(checkpoint), workers=2))
    assert results["first"] == "first: done" and results["last"] == "last: done"
    assert results["dies once"] == "dies once: done"
    assert isinstance(results["always dies"], JobFailure) and "died twice" in results["always dies"].reason
    assert Path(died_once).exists()
