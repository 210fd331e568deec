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


def within(seconds, work):
    """What `work()` returns or raises, or a failure when it has not ended in `seconds` (a hang, as before)."""
    import threading

    ended = {}

    def call():
        try:
            ended["result"] = work()
        except Exception as error:  # handed to the test
            ended["error"] = error

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert ended, f"still waiting after {seconds} s"
    if "error" in ended:
        raise ended["error"]
    return ended["result"]


def test_more_workers_than_the_cluster_holds_run_on_those_it_holds(checkpoint, caplog):
    """`--workers 3` on a cluster of 2 CPUs: the third worker could never start, and the video handed to it waited
    forever without a word (thirtieth hostile round). As many start as the cluster holds, and that is said."""
    from xmempp.ray_runner import run_on_ray

    results = within(120, lambda: dict(run_on_ray(["a", "b", "c"], lambda network, job: f"{job}: done",
                                                  NetworkSpec(checkpoint), workers=3)))
    assert results == {"a": "a: done", "b": "b: done", "c": "c: done"}
    assert "--workers 3 asks for more workers than the Ray cluster holds (2 of 1 CPU each): running 2" in caplog.text


def test_a_worker_no_node_can_hold_is_refused_naming_the_option(checkpoint):
    """`--cpus-per-worker 3` on nodes of 2 CPUs: no worker could ever start, and batch waited forever."""
    from xmempp.errors import XMemPPError
    from xmempp.ray_runner import run_on_ray

    with pytest.raises(XMemPPError, match=r"no node of the Ray cluster can hold one worker of 3 CPUs \(--cpus-per-worker\)"
                                          r": its largest has 2 CPUs"):
        within(60, lambda: list(run_on_ray(["a"], lambda network, job: job, NetworkSpec(checkpoint), cpus_per_worker=3)))
