"""The visitors' states: made on a first load, found by browser session, closed when the tab goes.

The base of every group of handlers (demo/loading.py, editing.py, runs.py): the app's shared settings, the run
queue and speed table, and the check that a visitor has a video.
"""

from __future__ import annotations

import threading

import gradio as gr

from demo.run_queue import RunQueue
from demo.speed import SpeedTable
from demo.state import AppSettings, UserState
from xmempp.errors import XMemPPError


class Visitors:
    """`settings` (network, limits), the run queue and the speed table are shared by every visitor; each
    handler gets one visitor's `UserState`."""

    def __init__(self, settings: AppSettings, queue: RunQueue | None = None):
        self.settings = settings
        # Browser session -> its state, only so that `unload` can free it at once (Gradio's own
        # State deletion comes an hour after the tab closes).
        self._states_by_session: dict[str, UserState] = {}
        self.queue = queue if queue is not None else RunQueue(settings.max_runs, settings.max_waiting)
        self.speed = SpeedTable()  # measured on this machine: at start-up, then by every run
        self._speed_check: threading.Thread | None = None

    def new_state(self) -> UserState:
        return UserState(self.settings)

    def _remember(self, state: UserState, request: gr.Request | None) -> None:
        if getattr(request, "session_hash", None):
            self._states_by_session[request.session_hash] = state

    def unload(self, request: gr.Request) -> None:
        """The tab closed: stop its run and delete its files now."""
        state = self._states_by_session.pop(getattr(request, "session_hash", None) or "", None)
        if state is not None:
            self._forget(state)

    def _forget(self, state: UserState) -> None:
        # Its run leaves the queue now: a handler whose tab is gone may never be resumed to leave by itself.
        run = self.queue.find(state)
        if run is not None:
            self.queue.leave(run)
        state.close()

    @staticmethod
    def close_state(state: UserState | None) -> None:
        """Gradio's delete callback: the session ended, so its files go."""
        if state is not None:
            state.close()

    @staticmethod
    def _require(state: UserState | None) -> UserState:
        if state is None or not state.loaded:
            # A page that still shows a video but has no state here outlived a server restart.
            raise XMemPPError("load a video first: upload one or press the example button. If this page already "
                              "showed your video, the app was restarted and this session is gone: upload your exported "
                              "zip to continue from it")
        return state
