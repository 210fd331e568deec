"""Every event handler of the app, gathered from their groups by role.

- demo/loading.py: bring a video in (upload, example, resume zip) and take the work out (export);
- demo/editing.py: choose a frame, paint, save, remove, GrabCut, objects and their names;
- demo/runs.py: processing size, propagation through the run queue, Stop, suggestions;
- demo/views.py: what the screen shows of a video (read-only), demo/feedback.py: where each message goes.

Each handler returns its outputs keyed by component name and declares them (`handler` in feedback.py); ui.py
wires the names to components.
"""

from __future__ import annotations

from demo.editing import Editing
from demo.loading import Loading
from demo.runs import Runs


class Handlers(Loading, Editing, Runs):
    """The app's handlers; `settings` (network, limits) is shared by every visitor, each handler gets one
    visitor's state."""
