"""app.py: flags, and starting without weights (the app still starts; the status says what is missing)."""

from __future__ import annotations

import pytest

import app
from xmempp.errors import XMemPPError
from xmempp.model.weights import missing_weights_message


def test_flags_default_to_the_documented_limits():
    args = app.parse_args([])
    assert (args.max_frames, args.max_side, args.max_upload_mb, args.size) == (300, 1280, 200, 480)
    assert args.weights is None and args.device is None and not args.share


def test_non_positive_limits_are_refused():
    with pytest.raises(SystemExit):
        app.parse_args(["--max-frames", "0"])


def test_offline_without_weights_gives_no_network_and_the_message(monkeypatch):
    monkeypatch.setattr(app, "find_weights", lambda weights: None)
    monkeypatch.setenv("XMEMPP_OFFLINE", "1")
    assert app.load_shared_network(None, "cpu") == (None, missing_weights_message())


def test_a_failed_download_still_starts_the_app(monkeypatch):
    def fail() -> None:
        raise XMemPPError("could not download the XMem weights")

    monkeypatch.setattr(app, "find_weights", lambda weights: None)
    monkeypatch.setattr(app, "ensure_weights", fail)
    monkeypatch.delenv("XMEMPP_OFFLINE", raising=False)
    assert app.load_shared_network(None, "cpu") == (None, missing_weights_message())


def test_the_ui_builds_without_weights(tmp_path):
    from demo.media import Limits
    from demo.state import AppSettings
    from demo.ui import build_demo

    settings = AppSettings(network=None, limits=Limits(), work_root=tmp_path, example=app.EXAMPLE,
                           weights_message=missing_weights_message())
    blocks = build_demo(settings)
    ids = {block.elem_id for block in blocks.blocks.values()}
    assert {"upload", "example", "frame", "editor", "object", "save-annotation", "references", "propagate", "k",
            "suggestions", "export", "download", "status"} <= ids
    assert app.EXAMPLE.is_file() and app.EXAMPLE.stat().st_size < 500_000
