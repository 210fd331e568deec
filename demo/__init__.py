"""The Gradio app of xmempp: layout (ui), thin handlers, per-user state, media in and out, GrabCut helper.

Nothing in the engine (`xmempp/`) imports this package; this package uses the engine's public API only.
"""
