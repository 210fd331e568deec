"""Handlers of runs: the processing size and its estimated wait, propagation through the app's run queue, Stop,
and the suggestions a run gives.

A run's progress and outcome show on the line beside Propagate; Status says what the video holds when the run
starts and ends. The viewer follows the run with the frames it yields (picture and mask already in memory); when
the run ends it comes back to the frame in the editor, whatever the person opened meanwhile.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Iterator

import gradio as gr

from demo import views
from demo.feedback import Outputs, duration, handler, no_room_behind, progress_html, sentence_case
from demo.run_queue import QueuedRun
from demo.speed import measure_speed
from demo.state import RunProgress, UserState
from demo.visitors import Visitors
from xmempp.errors import XMemPPError, file_system_problem, shown

log = logging.getLogger(__name__)

VIEWER_UPDATE_S = 0.3  # a running propagation refreshes the viewer at most this often
QUEUE_UPDATE_S = 1.0  # a waiting propagation tells its place in the queue this often
SPEED_CHECK = "the app's speed check"  # the owner of the start-up speed measurement in the run queue
RUN_OUTPUTS = ("viewer", "progress", "video", "suggestions", "timeline", "size", "status")


def whole(value: object, what: str) -> int:
    """A slider's or radio's whole number; XMemPPError naming `what` for anything else (the page sends numbers, a
    hand-made request may send NaN, text or None: int() failed inside the handler, 'Something went wrong')."""
    if isinstance(value, int) and not isinstance(value, bool):  # exact however large: float() overflows past 1e308
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer():
        raise XMemPPError(f"{what} must be a whole number, got {shown(value)}")
    return int(number)


def run_text(progress: RunProgress) -> str:
    return (f"{progress.done} / {progress.total} frames · {progress.fps:.1f} frames/s · "
            f"{duration(progress.seconds_left)} left")


class Runs(Visitors):
    # ----- the processing size and what it costs ----------------------------------------------------------
    def start_speed_check(self) -> None:
        """Time the network on a generated clip in the background, holding the model like any run, so that
        the first visitor already sees what each processing size will cost."""
        if self.settings.network is None or self._speed_check is not None:
            return
        run = self.queue.join(SPEED_CHECK, 0, lambda: math.nan)

        def check() -> None:
            try:
                while not self.queue.wait_turn(run, QUEUE_UPDATE_S):
                    pass
                self.speed.add_measured(measure_speed(self.settings.network, self.settings.sizes,
                                                      self.settings.precision))
            except Exception:  # the app works without estimates; the log says why there are none
                log.exception("the start-up speed check failed")
            finally:
                self.queue.leave(run)

        self._speed_check = threading.Thread(target=check, name="speed-check", daemon=True)
        self._speed_check.start()

    def size_choices(self, state: UserState | None) -> gr.Radio:
        """The processing sizes, each with the estimated propagation time of this video on this machine."""
        sizes = sorted({*self.settings.sizes, self.settings.size}, reverse=True)
        value = state.size if state is not None and state.loaded else self.settings.size
        if state is None or not state.loaded or self.settings.network is None:
            return gr.Radio(choices=[(f"{s} px", s) for s in sizes], value=value)
        choices, timed = [], 0
        for size in sizes:
            seconds = self.estimate(state, size)
            timed += not math.isnan(seconds)
            choices.append((f"{size} px" + ("" if math.isnan(seconds) else f" · about {duration(seconds)}"), size))
        if timed:
            info = (f"Estimated time for this video's {state.num_frames} frames with {max(state.object_count, 1)} "
                    "object(s), measured on this machine.")
        elif self._speed_check is not None and self._speed_check.is_alive():
            info = "Measuring this machine's speed: the time each size takes shows here in a moment."
        else:
            info = "The time each size takes shows here after the first propagation on this machine."
        return gr.Radio(choices=choices, value=value, info=info)

    @handler("size", "sizes_timer", errors_to="size")
    def sizes_after_speed_check(self, state: UserState | None) -> Outputs:
        """Ticks while the start-up speed check runs; then shows its times and stops."""
        if self._speed_check is not None and self._speed_check.is_alive():
            return {}
        return {**({"size": self.size_choices(state)} if state is not None and state.loaded else {}),
                "sizes_timer": gr.Timer(active=False)}

    def estimate(self, state: UserState, size: int, frames: int | None = None) -> float:
        """Seconds a propagation of `frames` (default: all) frames of this video, with its objects, at `size`
        should take here."""
        return self.speed.seconds(size, state.frame_size, frames or state.num_frames, state.object_count)

    @handler("suggestions", "timeline", "size", "progress", "status", errors_to="progress")
    def set_size(self, state: UserState | None, size: int) -> Outputs:
        """The references are encoded again at the new size; the run line says so."""
        if state is None or not state.loaded:
            return {}
        state.set_size(whole(size, "the processing size"))
        current = state.editor_frame or 0
        references = set(state.annotated_frames)
        ran = any(state.mask(i) is not None for i in range(state.num_frames) if i not in references)
        return {"suggestions": [], "timeline": views.timeline(state, current), "size": self.size_choices(state),
                "progress": progress_html(0, 0, f"Processing size {size} px (short side): "
                                          + ("propagate again to use it." if ran else "the next run will use it.")),
                "status": views.status(state)}

    # ----- propagation ------------------------------------------------------------------------------------
    def _waiting_text(self, run: QueuedRun) -> str:
        ahead = self.queue.ahead_of(run)
        seconds = self.queue.wait_seconds(run)
        wait = f"about {duration(seconds)}" if not math.isnan(seconds) else "time not known yet"
        checking = " (the app is measuring this machine's speed)" if any(r.owner is SPEED_CHECK for r in ahead) else ""
        return (f"Waiting for the model: {len(ahead)} run(s) ahead of yours{checking}, {wait}. "
                "Yours starts by itself; you can keep annotating.")

    def _starting_text(self, state: UserState) -> str:
        """The run line until the first frame is done, which takes minutes with many objects on a CPU."""
        seconds = self.estimate(state, state.size)
        work = f"{state.num_frames} frames with {state.object_count} object(s) at {state.size} px"
        if math.isnan(seconds):
            return f"starting: {work} (the time left shows after the first frame)…"
        return f"starting: about {duration(seconds)} for {work}…"

    def _take_turn(self, state: UserState, run: QueuedRun) -> Iterator[str]:
        """Wait for `run`'s turn with the model, yielding where it stands at once and then about every second."""
        timeout = 0.0
        while not self.queue.wait_turn(run, timeout):
            if run.cancelled or not self.queue.holds(run) or not state.loaded:
                return
            yield self._waiting_text(run)
            timeout = QUEUE_UPDATE_S

    def _computed(self, run: QueuedRun, frames: Iterator[RunProgress]) -> Iterator[RunProgress]:
        """`frames`, each computed while the queue knows that the model works for `run` (a tab closed meanwhile
        gives its place only when the frame is done)."""
        while True:
            with self.queue.computing(run):
                progress = next(frames, None)
            if progress is None:
                return
            yield progress

    @handler(*RUN_OUTPUTS, errors_to="progress")
    def propagate(self, state: UserState | None, k: float) -> Iterator[Outputs]:
        """Streamed from the click on: the run first waits for its turn in the app's queue (its place counting
        down on the run line), then runs. A run that fails (a full disk) is said on the run line by the handler,
        once Status no longer says the video is being propagated: it said so after the failure."""
        state = self._require(state)
        status_says_running: list[bool] = []  # set once Status says "Propagating at ... px"
        reached: dict[str, int] = {}  # the frames done of how many, as the run goes
        try:
            yield from self._propagated(state, k, status_says_running, reached)
        except Exception as error:
            if status_says_running and state.loaded and not state.running:  # the run has let go of the video
                yield {"status": views.status(state)}
            no_room = no_room_behind(error)
            if no_room is None or not reached.get("done"):
                raise
            # "nothing you made is lost" was said of a run whose frames done had replaced the previous run's masks
            log.warning("no room to write in a run: %s", no_room, exc_info=error)
            yield {"progress": progress_html(0, 0, (
                f"⚠ Stopped after {reached['done']} of {reached['total']} frames: the server has no room to write "
                f"your results ({file_system_problem(no_room)}). The frames done keep their new masks, the others "
                "what they had; your references are kept: propagate again in a while"))}

    def _propagated(self, state: UserState, k: float, status_says_running: list[bool],
                    reached: dict[str, int]) -> Iterator[Outputs]:
        k = whole(k, "the number of suggestions")  # before the run: it is needed only once the run has ended
        state.check_can_propagate()
        run = self.queue.join(state, state.num_frames, functools.partial(self.estimate, state, state.size))
        last: RunProgress | None = None
        frames = None
        try:
            log.info("propagation of %d frames at %d px asked for, %d run(s) ahead", state.num_frames, state.size,
                     len(self.queue.ahead_of(run)))
            for text in self._take_turn(state, run):
                yield {"progress": progress_html(0, 0, text)}
            if run.cancelled:
                yield {"progress": progress_html(0, 0, "Stopped before the run began; nothing changed.")}
                return
            if not self.queue.holds(run) or not state.loaded:  # the tab closed while it waited
                return
            frames = state.propagate()
            # An annotated first frame needs no network: show it at once, while the model works on it.
            first = {"viewer": views.viewer(state, 0, running=True)} if 0 in state.annotated_frames else {}
            status_says_running.append(True)
            yield {**first, "progress": progress_html(0, state.num_frames, self._starting_text(state)), "video": None,
                   "suggestions": [], "status": views.status(state, starting_run=True)}
            shown = 0.0
            for last in self._computed(run, frames):
                run.done = reached["done"] = last.done
                reached["total"] = last.total
                if time.monotonic() - shown >= VIEWER_UPDATE_S or last.done == last.total:
                    shown = time.monotonic()
                    yield {"viewer": views.viewer(state, last.index, running=True, picture=last.image, mask=last.mask),
                           "progress": progress_html(last.done, last.total, run_text(last)),
                           "timeline": views.timeline(state, state.editor_frame or 0)}
        finally:
            if frames is not None:  # a failure here ends the video's run now, not when the generator is collected
                frames.close()
            self.queue.leave(run)
        if not state.loaded:  # the tab closed during the run: nothing is left to show or to write
            return
        current = min(max(state.editor_frame or 0, 0), state.num_frames - 1)  # the editor's frame now
        if last is None:
            yield {"viewer": views.viewer(state, current), "timeline": views.timeline(state, current),
                   "progress": progress_html(0, 0, "Stopped before the first frame; nothing changed."),
                   "status": views.status(state)}
            return
        self.speed.record(state.size, last.elapsed, last.done, state.frame_size, state.object_count)
        stopped = last.done < last.total
        kept = sum(1 for i in range(state.num_frames) if state.is_from_previous_run(i))
        yield {"viewer": views.viewer(state, current), "timeline": views.timeline(state, current),
               "progress": progress_html(last.done, last.total, "Writing the overlay video…")}
        picks, remark = state.suggest(k)
        video = state.overlay_video()  # checked last, just before it is served: its folder may be replaced meanwhile
        if stopped:
            text = f"Stopped after {last.done} of {last.total} frames; the frames done are kept"
            text += f", {kept} not reached keep the previous run's masks." if kept else "."
        else:
            text = (f"Propagated {last.total} frames in {duration(last.elapsed)} ({last.fps:.1f} frames/s, "
                    f"{state.precision}).")
        text += f" {len(picks)} suggested frame(s) to annotate next." if picks else ""
        text += f" ({remark})" if remark else ""
        yield {"viewer": views.viewer(state, current), "progress": progress_html(last.done, last.total, text),
               "video": str(video) if video else None, "suggestions": views.suggestions(state),
               "timeline": views.timeline(state, current), "size": self.size_choices(state),
               "status": views.status(state)}

    @handler("progress", errors_to="progress")
    def stop(self, state: UserState | None) -> Outputs:
        run = self.queue.find(state) if state is not None else None
        if run is not None and not run.running:
            self.queue.cancel(run)
            return {"progress": progress_html(0, 0, "Stopped while waiting: your run will not start.")}
        if state is None or not state.running:
            return {"progress": progress_html(0, 0, "Nothing is running.")}
        state.stop()
        return {"progress": progress_html(0, 0, "Stopping after the current frame…")}

    @handler("suggestions", "timeline", "progress", errors_to="progress")
    def suggest(self, state: UserState | None, k: float) -> Outputs:
        state = self._require(state)
        picks, text = state.suggest(whole(k, "the number of suggestions"))
        timeline = views.timeline(state, state.editor_frame or 0)
        if not picks:
            message = sentence_case(text) + "." if text else "No frame to suggest."
            return {"suggestions": [], "timeline": timeline, "progress": progress_html(0, 0, message)}
        message = f"{len(picks)} suggested frame(s)" + (f" ({text})." if text else ".")
        return {"suggestions": views.suggestions(state), "timeline": timeline,
                "progress": progress_html(0, 0, message)}


