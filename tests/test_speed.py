"""How long a propagation should take here: seconds per megapixel of network input, per processing size."""

from __future__ import annotations

import math

import pytest

from demo.speed import SpeedTable, network_megapixels, object_factor


def test_the_network_sees_the_short_side_at_the_processing_size():
    assert network_megapixels((480, 854), 240) == pytest.approx(240 * 427 / 1e6)
    assert network_megapixels((1080, 1920), 480) == pytest.approx(480 * 853.33 / 1e6, rel=1e-4)


def test_nothing_timed_means_no_estimate():
    assert math.isnan(SpeedTable().seconds(480, (480, 854), 60))


def test_a_timed_run_predicts_a_video_of_another_length_and_shape_at_its_size():
    table = SpeedTable()
    table.record(240, seconds=10.0, frames=20, frame_size=(480, 854))  # 0.5 s per frame
    assert table.seconds(240, (480, 854), 60) == pytest.approx(30.0)
    assert table.seconds(240, (240, 854), 60) == pytest.approx(60.0, rel=1e-3)  # twice the pixels


def test_a_video_of_32_objects_is_estimated_at_the_measured_11_times_one_objects_time():
    """On 2 CPU cores a frame took 1.9 s for one object, 21.5 s (11.3 times) for 32 (xmempp/masks/ids.py)."""
    table = SpeedTable()
    table.record(240, seconds=19.0, frames=10, frame_size=(240, 427))
    one = table.seconds(240, (240, 427), 10)
    assert one == pytest.approx(19.0)
    assert table.seconds(240, (240, 427), 10, objects=8) == pytest.approx(19.0 * (1 + 7 / 3))  # 6.4 s measured
    assert table.seconds(240, (240, 427), 10, objects=32) / one == pytest.approx(21.5 / 1.9, rel=0.01)
    assert table.seconds(240, (240, 427), 10, objects=0) == one  # nothing annotated yet: one object's time


def test_a_run_of_many_objects_leaves_one_objects_estimate_as_it_was():
    table = SpeedTable({240: 2.0})
    frame_seconds = 2.0 * network_megapixels((240, 427), 240)
    table.record(240, seconds=frame_seconds * object_factor(32), frames=1, frame_size=(240, 427), objects=32)
    assert table.rate(240) == pytest.approx(2.0)


def test_a_size_never_timed_takes_the_nearest_timed_sizes_pace_per_pixel():
    table = SpeedTable({240: 2.0, 480: 1.0})
    assert table.rate(400) == 1.0 and table.rate(300) == 2.0 and table.rate(96) == 2.0
    assert table.rate(360) == 2.0  # halfway: the smaller size's pace, the longer estimate


def test_start_up_figures_never_replace_what_a_run_measured():
    table = SpeedTable()
    table.record(240, seconds=10.0, frames=10, frame_size=(240, 427))
    table.add_measured({240: 99.0, 480: 3.0})
    assert table.rate(240) == pytest.approx(1 / network_megapixels((240, 427), 240)) and table.rate(480) == 3.0


def test_each_run_moves_its_sizes_figure_halfway_to_what_it_measured():
    table = SpeedTable({240: 2.0})
    table.record(240, seconds=4.0 * network_megapixels((240, 427), 240), frames=1, frame_size=(240, 427))
    assert table.rate(240) == pytest.approx(3.0)


def test_the_speed_check_keeps_the_faster_precision_where_bf16_is_native(network, monkeypatch):
    import demo.speed as speed
    import xmempp.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    timed = []

    def seconds_per_frame(network, frames, size, name="fp32"):
        timed.append((size, name))
        return {"fp32": 1.0, "bf16": 0.4}[name] * size / 480

    monkeypatch.setattr(speed, "_seconds_per_frame", seconds_per_frame)
    choice = speed.PrecisionChoice("auto")
    assert choice.running(network) == "bf16"  # before the check: what the hardware promises
    speed.measure_speed(network, (480, 240), choice)
    assert choice.running(network) == "bf16" and choice.timed
    assert timed == [(480, "fp32"), (480, "bf16"), (240, "bf16")]


def test_the_speed_check_keeps_fp32_where_bf16_is_slower(network, monkeypatch):
    import demo.speed as speed
    import xmempp.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(speed, "_seconds_per_frame", lambda network, frames, size, name="fp32":
                        {"fp32": 1.0, "bf16": 1.5}[name])
    choice = speed.PrecisionChoice("auto")
    speed.measure_speed(network, (480, 240), choice)
    assert choice.running(network) == "fp32"


def test_without_native_bf16_the_speed_check_times_fp32_alone(network, monkeypatch):
    import demo.speed as speed
    import xmempp.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    timed = []
    monkeypatch.setattr(speed, "_seconds_per_frame", lambda network, frames, size, name="fp32":
                        timed.append(name) or 1.0)
    choice = speed.PrecisionChoice("auto")
    speed.measure_speed(network, (480, 240), choice)
    assert set(timed) == {"fp32"} and choice.running(network) == "fp32"
