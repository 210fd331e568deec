"""The session: permanent memory semantics, propagation as a generator, suggestions from cached keys."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import moving_square_frames, square_mask, write_frames
from xmempp import EmptyAnnotationError, FrameFolder, InferenceConfig, VideoSession, XMemPPError
from xmempp.errors import OutOfMemoryError
from xmempp.uncertainty import FrameUncertainty, ObjectMeasure, measure_probabilities

SMALL = InferenceConfig(size=96)


@pytest.fixture
def session(network, tmp_path) -> VideoSession:
    return VideoSession(network, FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(12))), SMALL)


def predictions(session: VideoSession) -> list[np.ndarray]:
    return [frame.mask for frame in session.propagate()]


def test_annotated_frames_return_their_annotation(session):
    first, last = square_mask(0), square_mask(11, object_id=3)
    first[60:80, 100:120] = 3
    session.annotate(0, first)
    session.annotate(11, last)
    masks = predictions(session)
    assert np.array_equal(masks[0], first)
    assert np.array_equal(masks[11], last)


def test_an_annotation_on_the_last_frame_changes_the_prediction_on_frame_1(session, network):
    session.annotate(0, square_mask(0))
    before = predictions(session)[1]
    session.annotate(11, square_mask(11))
    after = predictions(session)[1]
    assert not np.array_equal(before, after)
    # The change is the second annotation's, and only its: a new session given both from the start agrees.
    with VideoSession(network, session.frames, SMALL) as fresh:
        fresh.annotate(0, square_mask(0))
        fresh.annotate(11, square_mask(11))
        assert np.array_equal(predictions(fresh)[1], after)


def test_removing_an_annotation_restores_the_earlier_result(session):
    session.annotate(0, square_mask(0))
    before = predictions(session)
    session.annotate(11, square_mask(11))
    session.remove_annotation(11)
    after = predictions(session)
    assert session.annotated_frames == [0]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_replacing_an_annotation_keeps_one_entry_per_frame(session):
    session.annotate(0, square_mask(0))
    session.annotate(0, square_mask(1))
    assert session.annotated_frames == [0]
    assert len(session.permanent) == 1
    assert np.array_equal(predictions(session)[0], square_mask(1))


def test_object_ids_are_kept_in_the_output(session):
    mask = square_mask(0, object_id=7)
    mask[70:90, 0:30] = 42
    session.annotate(0, mask)
    ids = set(np.unique(np.concatenate([m.ravel() for m in predictions(session)])))
    assert ids <= {0, 7, 42}


def test_an_object_first_annotated_later_reads_only_annotations_that_know_it(session):
    session.annotate(0, square_mask(0, object_id=1))
    later = square_mask(6, object_id=1)
    later[70:90, 0:30] = 2
    session.annotate(6, later)
    assert [list(g) for g in session.permanent.object_groups()] == [[0], [1]]
    masks = predictions(session)
    assert len(masks) == 12 and np.array_equal(masks[6], later)


def test_removing_the_only_annotation_of_an_object_forgets_that_object(session):
    session.annotate(0, square_mask(0, object_id=1))
    two = square_mask(6, object_id=1)
    two[70:90, 0:30] = 2
    session.annotate(6, two)
    session.remove_annotation(6)
    assert session.objects.ids == [1]
    assert set(np.unique(np.concatenate([m.ravel() for m in predictions(session)]))) <= {0, 1}


def test_an_empty_annotation_is_refused_and_changes_nothing(session):
    session.annotate(0, square_mask(0))
    with pytest.raises(EmptyAnnotationError, match="frame 3"):
        session.annotate(3, np.zeros((96, 128), np.uint8))
    assert session.annotated_frames == [0]


def test_a_mask_of_the_wrong_size_is_refused_with_both_sizes(session):
    with pytest.raises(XMemPPError, match="64x32.*128x96"):
        session.annotate(0, np.ones((32, 64), np.uint8))


@pytest.mark.parametrize("made", ["requiring grad", "sparse", "int64"])
def test_a_torch_mask_is_taken_as_its_values(session, made):
    """A model's output (requiring grad, sparse) raised torch's own words in numpy's conversion (forty-sixth
    hostile round)."""
    ids = torch.from_numpy(square_mask(0).astype(np.int64))
    mask = {"requiring grad": ids.float().requires_grad_() * 1, "sparse": ids.to_sparse(), "int64": ids}[made]
    if made == "requiring grad":  # a float tensor is refused by its dtype, as a float array is
        with pytest.raises(XMemPPError, match="must be an \\(H, W\\) array of integer object ids .* got a tensor of "
                                              "torch.float32"):
            session.annotate(0, mask)
        mask = ids.clone().requires_grad_(False)
    session.annotate(0, mask)
    assert session.annotated_frames == [0]


@pytest.mark.parametrize(("mask", "said"), [
    (torch.zeros((96, 128), dtype=torch.bfloat16), "got a tensor of torch.bfloat16"),
    (torch.zeros((96, 128), dtype=torch.uint8, device="meta"), "got a tensor on the meta device, which holds no values"),
], ids=["bfloat16", "meta"])
def test_a_torch_mask_numpy_cannot_read_is_refused_in_words(session, mask, said):
    with pytest.raises(XMemPPError, match=said):
        session.annotate(0, mask)


def test_a_sparse_mask_of_another_size_is_refused_before_it_is_made_dense(session):
    """A sparse 10^6 x 10^6 mask asked torch for a terabyte before its size was checked (forty-seventh round)."""
    mask = torch.sparse_coo_tensor(torch.tensor([[0], [0]]), torch.tensor([1], dtype=torch.uint8), (10**6, 10**6))
    with pytest.raises(XMemPPError, match="the mask for frame 0 is 1000000x1000000, but the frame is 128x96"):
        session.annotate(0, mask)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_more_torch_masks_numpy_cannot_read_are_refused_in_words(session):
    """A quantized model's output, rows of tensors requiring grad or of bfloat16, a nested tensor: torch's words
    (forty-seventh hostile round)."""
    ids = torch.from_numpy(square_mask(0))
    masks = {"a tensor of torch.quint8": torch.quantize_per_tensor(ids.float(), 1.0, 0, torch.quint8),
             "got a list numpy cannot read as one": [row.float().requires_grad_() for row in ids.float()],
             "got a nested tensor": torch.nested.nested_tensor([ids[0].float(), ids[1].float()])}
    for said, mask in masks.items():
        with pytest.raises(XMemPPError, match=said):
            session.annotate(0, mask)
    assert session.annotated_frames == []


def test_a_frame_past_the_end_is_named(session):
    with pytest.raises(XMemPPError, match="frame 12 is past the end"):
        session.annotate(12, square_mask(0))


def test_propagating_without_annotations_says_what_to_do(session):
    with pytest.raises(XMemPPError, match="annotate at least one frame"):
        list(session.propagate())


def test_propagation_yields_frames_in_order_and_reports_progress(session):
    session.annotate(0, square_mask(0))
    seen = []
    indices = [f.index for f in session.propagate(progress=lambda done, total: seen.append((done, total)))]
    assert indices == list(range(12))
    assert seen[-1] == (12, 12)


def test_each_propagated_frame_carries_its_decoded_picture_read_once(session, monkeypatch):
    session.annotate(0, square_mask(0))
    expected = [session.frame(i) for i in range(session.num_frames)]
    size = session.frame_size  # read once per session (from frame 0) and kept
    reads = []
    original_read = FrameFolder.read
    monkeypatch.setattr(FrameFolder, "read", lambda self, i: reads.append(i) or original_read(self, i))
    frames = list(session.propagate())
    assert sorted(reads) == list(range(12))  # the picture is the one decoded for the network, not a second read
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.image.shape == (*size, 3)
        np.testing.assert_array_equal(frame.image, expected[frame.index])


def test_cancelling_keeps_the_frames_already_done(session):
    session.annotate(0, square_mask(0))
    cancel = threading.Event()
    done = []
    for frame in session.propagate(cancel=cancel):
        done.append(frame.index)
        if frame.index == 4:
            cancel.set()
    assert done == [0, 1, 2, 3, 4]
    assert all(session.prediction(i) is not None for i in range(5))
    assert all(session.prediction(i) is None for i in range(5, 12))


def test_stopping_a_rerun_keeps_the_previous_runs_masks_for_frames_not_reached(session):
    session.annotate(0, square_mask(0))
    first = predictions(session)
    session.annotate(6, square_mask(6))
    cancel = threading.Event()
    for frame in session.propagate(cancel=cancel):
        if frame.index == 3:
            cancel.set()
    assert all(np.array_equal(session.prediction(i), first[i]) for i in range(4, 12) if i != 6)
    assert [i for i in range(12) if session.prediction_is_from_previous_run(i)] == [4, 5, 7, 8, 9, 10, 11]


def test_a_finished_run_leaves_no_frame_from_a_previous_run(session):
    session.annotate(0, square_mask(0))
    predictions(session)
    predictions(session)
    assert not any(session.prediction_is_from_previous_run(i) for i in range(12))


def test_the_uncertainty_measure_changes_no_mask(session, monkeypatch):
    from xmempp import session as session_module

    session.annotate(0, square_mask(0))
    measured = [(f.mask, f.uncertainty) for f in session.propagate()]
    assert session.uncertainty(5) == measured[5][1]
    monkeypatch.setattr(session_module, "measure_probabilities", lambda probs, ids: FrameUncertainty())
    unmeasured = predictions(session)
    assert all(np.array_equal(mask, other) for (mask, _), other in zip(measured, unmeasured))
    assert measured[0][1].score == 0 and measured[0][1].objects[0].area == (square_mask(0) > 0).mean()
    assert all(0 <= u.score <= 1 and [m.object_id for m in u.objects] == [1] for _, u in measured)


def test_unsure_pixels_are_those_whose_winning_probability_is_low():
    probs = torch.tensor([[[0.9, 0.2, 0.1, 0.6]], [[0.1, 0.8, 0.3, 0.4]], [[0.0, 0.0, 0.6, 0.0]]])
    measure = measure_probabilities(probs, [4, 7])
    assert measure.objects == (ObjectMeasure(4, 0.25, 0.0), ObjectMeasure(7, 0.25, 1.0))
    assert measure.score == 1.0


def test_an_object_that_wins_no_pixel_counts_as_unsure():
    probs = torch.tensor([[[0.9, 0.95]], [[0.1, 0.05]]])
    assert measure_probabilities(probs, [1]).objects == (ObjectMeasure(1, 0.0, 1.0),)


def test_without_a_network_annotations_are_kept_and_propagation_asks_for_weights(tmp_path):
    session = VideoSession(None, FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(4))))
    session.annotate(1, square_mask(1))
    session.restore_predictions({2: square_mask(2)})
    assert session.annotated_frames == [1] and np.array_equal(session.prediction(1), square_mask(1))
    assert session.prediction_is_from_previous_run(2) and not session.prediction_is_from_previous_run(1)
    with pytest.raises(XMemPPError, match="weights"):
        list(session.propagate())


def test_reconfiguring_the_size_equals_a_new_session_at_that_size(network, tmp_path):
    frames = FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(6)))
    resized = VideoSession(network, frames, SMALL)
    resized.annotate(3, square_mask(3, object_id=2))
    resized.annotate(0, square_mask(0))
    resized.reconfigure(replace(SMALL, size=64))
    fresh = VideoSession(network, frames, replace(SMALL, size=64))
    fresh.annotate(0, square_mask(0))
    fresh.annotate(3, square_mask(3, object_id=2))
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(resized.propagate(), fresh.propagate()))


def two_objects(index: int) -> np.ndarray:
    mask = square_mask(index)
    mask[70:90, 10:40] = 2
    return mask


def test_removing_an_object_takes_it_out_of_every_annotation_and_prediction(network, tmp_path):
    session = VideoSession(network, FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(6))), SMALL)
    session.annotate(0, two_objects(0))
    session.annotate(4, square_mask(4, object_id=2))
    list(session.propagate())
    assert session.remove_object(2) == [0, 4]
    assert session.annotated_frames == [0]  # frame 4 showed nothing else
    assert np.array_equal(session.annotation(0), square_mask(0))
    assert session.prediction(4) is None
    assert not any((session.prediction(i) == 2).any() for i in (0, 1, 2, 3, 5))


def test_after_removing_an_object_propagation_equals_never_having_annotated_it(network, tmp_path):
    frames = FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(6)))
    removed = VideoSession(network, frames, SMALL)
    removed.annotate(0, two_objects(0))
    removed.annotate(4, square_mask(4, object_id=2))
    removed.remove_object(2)
    fresh = VideoSession(network, frames, SMALL)
    fresh.annotate(0, square_mask(0))
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(removed.propagate(), fresh.propagate()))


def test_suggestions_reuse_the_keys_of_propagation(session, monkeypatch):
    session.annotate(0, square_mask(0))
    predictions(session)

    def no_encoder(*args, **kwargs):
        raise AssertionError("suggest() must not run the key encoder")

    monkeypatch.setattr(session.network, "encode_key", no_encoder)
    picks = session.suggest(k=3, min_mask_presence_percent=0)
    assert len(picks) == 3 and 0 not in picks and len(set(picks)) == 3


def test_long_videos_go_through_long_term_consolidation(network, tmp_path):
    frames = FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(24)))
    config = replace(SMALL, mem_every=1, min_working_frames=2, max_working_frames=4, num_prototypes=16,
                     max_long_term_elements=40)
    session = VideoSession(network, frames, config)
    session.annotate(0, square_mask(0))
    consolidated = [session.memory_sizes() for _ in session.propagate()]
    assert max(sizes["long_term"] for sizes in consolidated) > 0
    assert all(sizes["long_term"] <= 40 for sizes in consolidated)
    assert all(sizes["working"] < 4 * 48 for sizes in consolidated)


def test_the_key_encoder_may_run_over_several_frames_at_once(network, tmp_path):
    frames = FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(12)))
    masks, keys = [], []
    for batch in (1, 5):  # 5 does not divide 12: the last pass is shorter
        session = VideoSession(network, frames, replace(SMALL, key_batch_size=batch))
        session.annotate(0, square_mask(0))
        masks.append(np.stack(predictions(session)))
        keys.append(torch.stack([session.frame_keys[i].key for i in range(12)]))
    assert (masks[0] == masks[1]).mean() >= 0.999
    # Batched convolutions may sum in another order: floating-point noise, small against the keys' range.
    assert (keys[0] - keys[1]).abs().max() <= 1e-4 * keys[0].abs().max()


@pytest.mark.parametrize(("mask", "says"), [
    (square_mask(1).astype(np.float32), "float32"),
    (-square_mask(1).astype(np.int16), "ids from -1 to 0"),
    (square_mask(1).astype(np.int32) * 300, "ids from 0 to 300"),
    (None, "got None"),
    (np.stack([square_mask(1)] * 3, axis=-1), r"shape \(96, 128, 3\)"),
    ([[1, 2], [3]], "got rows of different lengths"),  # numpy's raw ValueError (forty-fourth hostile round)
])
def test_a_mask_that_is_not_integer_ids_says_what_a_mask_must_be(session, mask, says):
    with pytest.raises(XMemPPError, match=rf"\(H, W\) array of integer object ids 0\.\.255 \(0 = background.*{says}"):
        session.annotate(1, mask)
    assert session.annotated_frames == []


def test_a_boolean_mask_is_object_1(session):
    session.annotate(1, square_mask(1) > 0)
    assert session.objects.ids == [1]


def test_suggestions_before_any_propagation_say_to_propagate_first(session):
    session.annotate(0, square_mask(0))
    with pytest.raises(XMemPPError, match="propagate first"):
        session.suggest(k=2, min_mask_presence_percent=0)


def test_propagate_checks_the_session_when_called_not_at_the_first_frame(session):
    with pytest.raises(XMemPPError, match="annotate at least one frame"):
        session.propagate()


def test_propagate_checks_its_arguments_when_called(session):
    session.annotate(0, square_mask(0))
    with pytest.raises(XMemPPError, match="progress"):
        session.propagate(progress=5)
    with pytest.raises(XMemPPError, match="cancel"):
        session.propagate(cancel=True)


def test_annotating_while_a_propagation_runs_is_refused(session):
    session.annotate(0, square_mask(0))
    running = session.propagate()
    next(running)
    with pytest.raises(XMemPPError, match="propagation of this video is running"):
        session.annotate(5, square_mask(5))
    with pytest.raises(XMemPPError, match="propagation of this video is running"):
        session.remove_annotation(0)
    running.close()
    session.annotate(5, square_mask(5))  # accepted once the run is over
    assert session.annotated_frames == [0, 5]


def test_a_change_during_a_propagation_is_refused_in_a_scripts_words(session):
    """A script was told to "press Stop" (the app's button) while its own propagation ran (thirtieth hostile
    round): the session's refusal says how a script stops a run."""
    session.annotate(0, square_mask(0))
    running = session.propagate()
    next(running)
    with pytest.raises(XMemPPError) as refused:
        session.annotate(5, square_mask(5))
    assert str(refused.value) == ("a propagation of this video is running: stop it (close its generator, or set its "
                                  "cancel event) or let it finish before saving an annotation")
    running.close()


def test_an_annotation_in_progress_when_a_propagation_starts_never_breaks_it(session, monkeypatch):
    """Another thread annotates a new object; the propagation starts while its encoding is under way."""
    session.annotate(0, square_mask(0))
    encoding, finish = threading.Event(), threading.Event()
    encode = session._encode

    def slow_encode(*args):
        encoding.set()
        finish.wait(10)
        encode(*args)

    monkeypatch.setattr(session, "_encode", slow_encode)
    two_objects = square_mask(6)
    two_objects[70:90, 0:30] = 2
    annotating = threading.Thread(target=session.annotate, args=(6, two_objects))
    annotating.start()
    assert encoding.wait(10)
    results, errors = [], []

    def propagate() -> None:
        try:
            results.extend(frame.mask for frame in session.propagate())
        except Exception as error:  # noqa: BLE001 (the test reports whatever breaks)
            errors.append(error)

    propagating = threading.Thread(target=propagate)
    propagating.start()
    propagating.join(0.5)  # the propagation has had time to start (and to break, without a lock)
    finish.set()
    annotating.join(30)
    propagating.join(60)
    assert errors == []
    assert len(results) == 12 and np.array_equal(results[6], two_objects)


def test_two_propagations_of_one_session_at_once_are_refused(session):
    session.annotate(0, square_mask(0))
    first = session.propagate()
    next(first)
    with pytest.raises(XMemPPError, match="propagation of this video is running"):
        next(session.propagate())
    first.close()


def _open_deleted_files() -> int:
    """Open files without a name: the key file is an anonymous temporary file."""
    fd_dir = Path("/proc/self/fd")
    return sum(os.readlink(fd).endswith("(deleted)") for fd in fd_dir.iterdir() if fd.is_symlink())


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc")
def test_closing_a_session_releases_its_key_file_at_once(network, tmp_path):
    frames = FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(4)))
    before = _open_deleted_files()
    with VideoSession(network, frames, SMALL) as session:
        session.annotate(0, square_mask(0))
        list(session.propagate())
        assert _open_deleted_files() == before + 1
    assert _open_deleted_files() == before
    with pytest.raises(XMemPPError, match="closed"):
        session.propagate()


def test_closing_a_session_stops_its_running_propagation(session):
    session.annotate(0, square_mask(0))
    done = []
    for frame in session.propagate():
        done.append(frame.index)
        if frame.index == 2:
            session.close()
    assert done == [0, 1, 2]


def test_running_out_of_memory_names_the_frame_and_the_size(session, monkeypatch):
    session.annotate(0, square_mask(0))

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: you tried "
                           "to allocate 9663676416 bytes.")

    monkeypatch.setattr(session.network, "encode_key", no_memory)
    with pytest.raises(OutOfMemoryError, match="propagating frame 0 at processing size 96"):
        list(session.propagate())


def test_closing_a_session_from_another_thread_mid_frame_ends_the_run_cleanly(session, monkeypatch):
    """A tab closed while its run is inside a frame: the frame finishes, the run ends, nothing fails."""
    import threading

    session.annotate(0, square_mask(0))
    step = session._step
    closed = threading.Event()

    def close_during_frame_2(propagation, index, *args):
        if index == 2:
            closer = threading.Thread(target=session.close)
            closer.start()
            closer.join()
            closed.set()
        return step(propagation, index, *args)

    monkeypatch.setattr(session, "_step", close_during_frame_2)
    done = [frame.index for frame in session.propagate()]
    assert closed.is_set() and done == [0, 1, 2]
    with pytest.raises(XMemPPError, match="closed"):
        session.propagate()


def test_more_objects_than_the_limit_are_refused_naming_it_and_change_nothing(session):
    from xmempp import MAX_OBJECTS

    session.annotate(0, square_mask(0))
    crowd = np.arange(96 * 128).reshape(96, 128) % (MAX_OBJECTS + 2)  # ids 0..MAX_OBJECTS + 1: one object too many
    with pytest.raises(XMemPPError, match=f"{MAX_OBJECTS + 1} objects, more than the {MAX_OBJECTS} one video may hold"):
        session.annotate(3, crowd)
    assert session.annotated_frames == [0] and session.objects.ids == [1]


def test_names_for_more_objects_than_the_limit_are_refused_naming_it(session):
    """objects.csv in a resume zip named ids 1..255: the video then held 255 objects (its export wrote a black
    matte per object and frame), past MAX_OBJECTS (issue 16, round three)."""
    from xmempp import MAX_OBJECTS

    for object_id in range(1, MAX_OBJECTS + 1):
        session.name_object(object_id, f"o{object_id}")
    session.name_object(MAX_OBJECTS, "renamed")  # an object already named keeps its place
    with pytest.raises(XMemPPError, match=f"{MAX_OBJECTS + 1} objects, more than the {MAX_OBJECTS} one video may hold"):
        session.name_object(MAX_OBJECTS + 1, "one too many")
    assert len(session.object_names) == MAX_OBJECTS and session.object_name(MAX_OBJECTS) == "renamed"


def test_the_empty_annotation_error_lives_with_the_other_errors():
    from xmempp import errors, session

    assert session.EmptyAnnotationError is errors.EmptyAnnotationError is EmptyAnnotationError
    assert issubclass(EmptyAnnotationError, XMemPPError)


def test_frames_far_from_any_video_shape_are_refused_naming_their_size(network, tmp_path):
    """A 4x400 strip at size 64 would be a 64x6400 network input: its long side grows the work without bound."""
    strip = write_frames(tmp_path / "strip", [np.full((4, 400, 3), 128, np.uint8)] * 2)
    with VideoSession(network, FrameFolder(strip), InferenceConfig(size=64)) as session, \
            pytest.raises(XMemPPError, match=r"the frames are 400x4: one side is more than 8 times the other"):
        session.annotate(0, np.ones((4, 400), np.uint8))


@pytest.mark.parametrize(("call", "says"), [
    (lambda s: s.annotate(1.0, square_mask(1)), "index must be a whole number (an int), got 1.0 (float)"),
    (lambda s: s.annotate("1", square_mask(1)), "index must be a whole number (an int), got '1' (str)"),
    (lambda s: s.prediction(1.0), "index must be a whole number (an int), got 1.0 (float)"),
    (lambda s: s.remove_annotation(0.0), "index must be a whole number (an int), got 0.0 (float)"),
    (lambda s: s.restore_annotations({1.0: square_mask(1)}), "index must be a whole number (an int), got 1.0"),
    (lambda s: s.name_object(1.5, "ball"), "object_id must be a whole number (an int), got 1.5 (float)"),
    (lambda s: s.name_object(1, b"ball"), "name must be text (a str) or None, got bytes"),  # was named "b'ball'"
    # a lone surrogate (a hand-made request) was taken, then every export failed writing it as UTF-8
    (lambda s: s.name_object(1, "a\ud800"), "holds a lone surrogate, which no file can hold as text"),
    # shown with one backslash, as Python writes the name (it showed 'a\\ud800b')
    (lambda s: s.name_object(1, "a\ud800b"), "the name 'a\\ud800b' holds a lone surrogate"),
    (lambda s: s.remove_object("a"), "object_id must be a whole number (an int), got 'a' (str)"),
    (lambda s: s.suggest(k=1.5), "k must be a whole number (an int), got 1.5 (float)"),
    (lambda s: s.suggest(alpha="x"), "alpha must be a number, got 'x' (str)")])
def test_a_wrong_type_is_refused_naming_the_parameter_and_what_it_takes(session, call, says):
    """annotate(1.0, mask) raised a bare TypeError (list indices must be integers or slices, not float)."""
    with pytest.raises(XMemPPError) as raised:
        call(session)
    assert says in str(raised.value)
    assert session.annotated_frames == []


def test_numpy_integers_are_frame_numbers(session):
    session.annotate(np.int64(3), square_mask(3))
    assert session.annotated_frames == [3]


def test_a_numpy_integer_frame_is_listed_as_a_plain_int(session):
    """annotate(np.int64(1), mask) listed its frame as np.int64(1), so annotated_frames and remove_object gave
    numpy integers back (json.dumps refuses them)."""
    session.annotate(np.int64(1), square_mask(1))
    session.restore_annotations({np.int64(2): square_mask(2)})
    assert [type(i) for i in session.annotated_frames] == [int, int]
    assert [type(i) for i in session.remove_object(1)] == [int, int]


@pytest.mark.parametrize("object_id", [0, 256])
def test_removing_an_object_id_that_no_object_can_have_is_refused(session, object_id):
    """remove_object(0) took the background for an object: every annotation 'changed' and was encoded again
    (fifth hostile round); name_object refuses these ids alike."""
    session.annotate(0, square_mask(0))
    with pytest.raises(XMemPPError, match=f"object ids are 1 to 255, got {object_id}"):
        session.remove_object(object_id)


@pytest.mark.parametrize(("mask", "says"), [(np.ones((10, 10), np.uint8), "is 10x10, but the frame is 128x96"),
                                            (np.full((96, 128), 300), "got ids from 300 to 300"),
                                            (np.full((96, 128), 0.5), "got an array of float64")])
def test_a_restored_prediction_is_checked_as_an_annotation_is(session, mask, says):
    """restore_predictions took a 10x10 mask for a 128x96 frame, ids of 300 as 44 and 0.5 as 0, without a word
    (fifth hostile round)."""
    with pytest.raises(XMemPPError, match=says):
        session.restore_predictions({1: mask})
    assert session.prediction(1) is None


def test_a_restored_prediction_may_be_empty(session):
    session.restore_predictions({1: np.zeros((96, 128), np.uint8)})
    assert not session.prediction(1).any()


@pytest.mark.parametrize(("call", "says"), [
    (lambda s: s.reconfigure(None), "config must be an InferenceConfig, got None"),
    (lambda s: s.reconfigure({"size": 64}), "config must be an InferenceConfig, got {'size': 64} (dict)"),
    (lambda s: s.restore_annotations(None), "masks must map frame numbers to masks ({index: mask}), got None"),
    (lambda s: s.restore_predictions([np.zeros((96, 128), np.uint8)]), "masks must map frame numbers to masks ({index: mask}), got [array("),
], ids=["reconfigure None", "reconfigure dict", "restore_annotations None", "restore_predictions list"])
def test_a_wrong_argument_type_is_named_by_the_session(session, call, says):
    """reconfigure(None) raised AttributeError ('NoneType' object has no attribute 'size'), restore_annotations(None)
    TypeError (fifth hostile round), unlike every other method's argument check."""
    with pytest.raises(XMemPPError, match=re.escape(says)):
        call(session)


@pytest.mark.parametrize(("arguments", "says"), [
    (lambda net, frames: (net, "frames/"), "frames must be a video's frames, as xmempp.open_frames(path) gives them, "
                                           "got frames/ (str)"),
    (lambda net, frames: (net, frames, {"mem_every": 3}), "config must be an InferenceConfig or None, got "
                                                          "{'mem_every': 3} (dict)"),
    (lambda net, frames: ("net", frames), "network must be an XMem network (from xmempp.load_network) or None, got "
                                          "'net' (str)"),
], ids=["a path as frames", "a dict as config", "a text as network"])
def test_a_session_of_the_wrong_kinds_is_refused_when_made(network, tmp_path, arguments, says):
    """VideoSession(net, "frames/") counted the path's characters as frames; a dict config and a text network were
    taken, and each ended in an AttributeError at the first annotation (tenth hostile round)."""
    frames = FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(3)))
    with pytest.raises(XMemPPError) as raised:
        VideoSession(*arguments(network, frames))
    assert str(raised.value) == says


# ----- record(): a propagation made elsewhere is checked as an annotation is (round eleven) -----------------------
def annotated(session: VideoSession) -> VideoSession:
    session.annotate(0, square_mask(0))
    return session


@pytest.mark.parametrize("frames, message", [
    (None, "frames must be the frames a propagation of run_request\\(\\) yields, got None"),
    ([1, 2], "each of frames must be a PropagatedFrame from run_request\\(\\)'s propagation, got 1 \\(int\\)"),
])
def test_record_refuses_what_is_no_propagation_in_words(session, frames, message):
    with pytest.raises(XMemPPError, match=message):
        list(annotated(session).record(frames))


@pytest.mark.parametrize("mask, message", [
    (np.zeros((10, 10), np.uint8), "the mask for frame 1 is 10x10, but the frame is 128x96"),
    (np.full((96, 128), 0.5), "must be an \\(H, W\\) array of integer object ids .* got an array of float64"),
    (np.full((96, 128), 300, np.int32), "got ids from 300 to 300"),
    (np.full((96, 128), 7, np.uint8), "holds object id\\(s\\) \\[7\\] that no annotation of this video has"),
])
def test_record_refuses_a_mask_that_is_not_of_this_video_and_keeps_none(session, mask, message):
    from xmempp.session import PropagatedFrame

    annotated(session)
    frame = PropagatedFrame(index=1, mask=mask, is_annotation=False, image=session.frame(1))
    with pytest.raises(XMemPPError, match=message):
        list(session.record([frame]))
    assert session.prediction(1) is None


def test_names_count_toward_the_object_limit_when_annotating(session):
    from xmempp import MAX_OBJECTS

    for object_id in range(2, MAX_OBJECTS + 1):  # 31 names: with object 1 painted, the video is full
        session.name_object(object_id, f"thing {object_id}")
    session.annotate(0, square_mask(0))
    with pytest.raises(XMemPPError, match=f"has {MAX_OBJECTS + 1} objects, more than the {MAX_OBJECTS}"):
        session.annotate(1, square_mask(1) * 50)
    assert session.annotated_frames == [0]


def recorded_frame(session: VideoSession, **changes):
    from xmempp.session import PropagatedFrame

    frame = PropagatedFrame(index=1, mask=square_mask(1), is_annotation=False, image=session.frame(1))
    return replace(frame, **changes)


@pytest.mark.parametrize("changes, message", [
    ({"keys": "keys"}, "the keys of frame 1 must be FrameKeys or None, got 'keys'"),
    ({"uncertainty": float("nan")}, "the uncertainty of frame 1 must be a FrameUncertainty, got nan"),
])
def test_record_refuses_keys_or_uncertainty_of_another_kind(session, changes, message):
    """Keys of 2 channels, of strings, or an uncertainty of NaN reached the key store or the views as raw
    ValueError, TypeError or a NaN (twelfth hostile round)."""
    with pytest.raises(XMemPPError, match=message):
        list(annotated(session).record([recorded_frame(session, **changes)]))


@pytest.mark.parametrize("key", [np.zeros((5, 3, 4), np.float32), np.array([["a"]])])
def test_record_refuses_keys_of_another_shape_naming_both(session, key):
    from xmempp.frame_store import FrameKeys

    annotated(session)
    keys = FrameKeys(key, np.zeros((1, 6, 8), np.float32), np.zeros((64, 6, 8), np.float32))
    with pytest.raises(XMemPPError, match="the key of frame 1's keys has .* where this video's frames at size 96 have "
                                          "\\(64, 6, 8\\)"):
        list(session.record([recorded_frame(session, keys=keys)]))
    assert session.prediction(1) is None


def test_record_and_from_request_refuse_arguments_of_another_kind(session, network):
    with pytest.raises(XMemPPError, match="^cancel must be a threading.Event or None, got 'yes'"):
        list(annotated(session).record([], cancel="yes"))
    with pytest.raises(XMemPPError, match="^request must be a RunRequest from VideoSession.run_request\\(\\), got None"):
        VideoSession.from_request(network, None)


def test_names_count_toward_the_object_limit_when_restoring(session):
    from xmempp import MAX_OBJECTS

    for object_id in range(2, MAX_OBJECTS + 1):
        session.name_object(object_id, f"thing {object_id}")
    session.annotate(0, square_mask(0))
    with pytest.raises(XMemPPError, match=f"has {MAX_OBJECTS + 1} objects, more than the {MAX_OBJECTS}"):
        session.restore_annotations({1: square_mask(1) * 50})
    assert session.annotated_frames == [0]


@pytest.mark.parametrize("device, fill, says", [("meta", 0.0, "no numbers"), ("cpu", float("nan"),
                                                                            "NaN or infinite values")])
def test_record_refuses_keys_that_hold_no_numbers(session, device, fill, says):
    """Keys on the `meta` device (shapes, no data) ended in NotImplementedError 'Cannot copy out of meta tensor'
    from record (thirteenth hostile round); NaN keys would make every suggestion meaningless."""
    from xmempp.frame_store import FrameKeys

    annotated(session)
    keys = FrameKeys(*(torch.full(shape, fill, device=device) for shape in ((64, 6, 8), (1, 6, 8), (64, 6, 8))))
    with pytest.raises(XMemPPError, match=f"the key of frame 1's keys has {says}"):
        list(session.record([recorded_frame(session, keys=keys)]))


def test_the_smallest_long_term_memory_propagates(network, tmp_path):
    """num_prototypes=1, max_long_term_elements=2 and consolidations every second frame ended in IndexError in
    long-term memory (fourteenth hostile round); num_prototypes=None in a TypeError."""
    config = InferenceConfig(size=48, mem_every=1, min_working_frames=1, max_working_frames=2, num_prototypes=1,
                             max_long_term_elements=2)
    session = VideoSession(network, FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(12))), config)
    session.annotate(0, square_mask(0))
    assert len(list(session.propagate())) == 12
    with pytest.raises(XMemPPError, match="^num_prototypes must be a whole number"):
        InferenceConfig(num_prototypes=None)


@pytest.mark.parametrize("make", [lambda: torch.zeros(64, 6, 8).to_sparse(),
                                  lambda: torch.nested.nested_tensor([torch.zeros(64, 6, 8)])])
def test_record_refuses_keys_that_are_sparse_or_nested(session, make):
    """A sparse or nested tensor as keys ended in NotImplementedError or 'Internal error: NestedTensorImpl doesn't
    support sizes' (fourteenth hostile round)."""
    from xmempp.frame_store import FrameKeys

    annotated(session)
    keys = FrameKeys(make(), torch.zeros(1, 6, 8), torch.zeros(64, 6, 8))
    with pytest.raises(XMemPPError, match="the key of frame 1's keys has no numbers"):
        list(session.record([recorded_frame(session, keys=keys)]))


@pytest.mark.parametrize("annotations", [None, ((0,),), {0: "mask"}])
def test_from_request_refuses_annotations_that_are_no_pairs(session, network, annotations):
    """A hand-built request whose annotations were no (frame, mask) pairs ended in TypeError or ValueError inside
    from_request (fourteenth hostile round)."""
    request = replace(annotated(session).run_request(), annotations=annotations)
    with pytest.raises(XMemPPError, match="^request.annotations must be \\(frame, mask\\) pairs"):
        VideoSession.from_request(network, request)
