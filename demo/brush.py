"""The editor's brush follows the object picker, in the browser.

The chosen object is what the person sees checked in the picker, so the browser, not the server, gives the
editor its brush. The server's brush updates were unreliable after quick "Add object" clicks or quick choices:
each came a round trip after the choice; Gradio drops an event's new run while its last is still on its way
(the default trigger mode); and Gradio 6.31 applies an update of the editor's props only after re-reading the
editor's value (an upload of its layers), so updates could land out of order. The brush kept an earlier
object's colour and the person's stroke was saved as that object. Two parts, each enough for the stroke on its
own (tests/test_browser_objects.py checked each alone):

- STROKE_COLOUR_JS (runs once with the page): as the pointer goes down on the editor's canvas, before the editor
  starts the stroke, the brush takes the colour of the object checked in the picker at that moment. Whatever
  order updates arrive in, a stroke is the chosen object's.
- BRUSH_UPDATE_JS: after anything that changes the choice, the editor's brush option (its colour swatch, its
  cursor) takes the chosen object's colour, computed in the browser from the picker's value: no server, no
  queue.
"""

from __future__ import annotations

import json

from demo.layers import brush_colour
from xmempp.masks.ids import MAX_OBJECTS

BRUSH_SIZE = 12  # a radius, in the picture's pixels

# Each object's brush as the editor's option holds it, [colour, opacity], indexed by object id (0 unused).
BRUSHES = [None, *(list(brush_colour(i)) for i in range(1, MAX_OBJECTS + 1))]
_BRUSHES = json.dumps(BRUSHES)

# The picker's value (`id`) -> an update of the editor's brush, the option demo.views.brush gives gr.ImageEditor.
BRUSH_UPDATE_JS = f"""(id) => {{
  const brushes = {_BRUSHES};
  const brush = brushes[Number(id)] ?? brushes[1];
  return {{__type__: 'update', brush: {{default_size: {BRUSH_SIZE}, colors: [brush], default_color: brush,
    color_mode: 'fixed'}}}};
}}"""

# Gradio 6.31's editor exposes its canvas as `window.editor`, whose tool named 'brush' draws the strokes with its
# current colour and opacity. A listener in the capture phase runs before the canvas's own. Without that handle (another
# Gradio) it does nothing, and tests/test_browser_objects.py's quick-click tests fail.
STROKE_COLOUR_JS = f"""() => {{
  const brushes = {_BRUSHES};
  document.addEventListener('pointerdown', (event) => {{
    if (!event.target?.closest?.('#editor .pixi-target')) return;
    const id = Number(document.querySelector('#object input[type=radio]:checked')?.value);
    const brush = window.editor?.tools?.get?.('brush');
    if (!brushes[id] || !brush?.set_brush_color) return;
    brush.set_brush_color(brushes[id][0]);
    brush.set_brush_opacity(brushes[id][1]);
  }}, true);
}}"""
