"""The command line: subcommands, progress-free output for scripts, and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xmempp.cli import main


def test_help_lists_the_subcommands():
    result = subprocess.run([sys.executable, "-m", "xmempp", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("run", "suggest", "download-weights"):
        assert command in result.stdout


def test_run_then_suggest(square_clip, tmp_path, checkpoint, capsys):
    frames, masks = square_clip
    out = tmp_path / "out"
    common = ["--images", str(frames), "--masks", str(masks), "--weights", str(checkpoint), "--size", "96", "--quiet"]
    assert main(["run", *common, "--output", str(out), "--frames", "0,6", "--iou"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 12 masks" in printed and "most unsure frames" in printed
    assert main(["suggest", *common, "--output", str(out), "--frames", "0,6", "-k", "2",
                 "--min-mask-percent", "0"]) == 0
    picks = [int(i) for i in capsys.readouterr().out.strip().split(",")]
    assert len(picks) == 2 and not {0, 6} & set(picks)


def test_a_bad_input_exits_1_with_the_message(square_clip, tmp_path, checkpoint, capsys):
    frames, masks = square_clip
    code = main(["run", "--images", str(frames), "--masks", str(masks), "--weights", str(checkpoint),
                 "--output", str(tmp_path / "out"), "--frames", "99", "--quiet"])
    assert code == 1
    assert "frame 99 is past the end" in capsys.readouterr().err


def test_missing_weights_offline_exits_1_saying_where_to_put_them(square_clip, tmp_path, monkeypatch, capsys):
    from xmempp.model import weights

    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS_DIR", tmp_path)
    monkeypatch.delenv("XMEMPP_WEIGHTS", raising=False)
    monkeypatch.setenv("XMEMPP_OFFLINE", "1")
    frames, masks = square_clip
    assert main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(tmp_path / "o")]) == 1
    assert "XMem.pth" in capsys.readouterr().err


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--frames", "a,b"])
    assert exit_info.value.code == 2
