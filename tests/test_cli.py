"""The command line: subcommands, progress-free output for scripts, exit codes, and messages for people."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xmempp.cli import main
from xmempp.errors import OutOfMemoryError, XMemPPError


def test_help_lists_the_subcommands():
    result = subprocess.run([sys.executable, "-m", "xmempp", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("run", "suggest", "export", "download-weights"):
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


def test_frame_names_on_stdout_cannot_forge_a_line_or_a_terminals_control_sequence(tmp_path, checkpoint, capsys):
    """A frame named with a line break or an escape sequence split the "most unsure frames" line in two and coloured
    the terminal; messages showed names escaped, the answer did not (forty-sixth hostile round)."""
    from tests.helpers import moving_square_frames, square_mask, write_palette_mask

    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    names = ["a\nb", "\x1b[31mred", "c\rd", "plain"]
    for name, frame in zip(names, moving_square_frames(4), strict=True):
        Image.fromarray(frame).save(frames / f"{name}.png")
    write_palette_mask(masks / "plain.png", square_mask(3))
    assert main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(tmp_path / "out"),
                 "--frames", "3", "--weights", str(checkpoint), "--size", "96", "--quiet"]) == 0  # "plain", last
    printed = capsys.readouterr().out
    assert len(printed.splitlines()) == 2 and "\x1b" not in printed and "\r" not in printed, printed
    assert "'a\\nb' " in printed
    # export's answer and suggest's note, with a line break in the folder's name (forty-seventh hostile round)
    run = tmp_path / "run\nx"
    assert main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(run), "--frames", "3",
                 "--weights", str(checkpoint), "--size", "96", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["export", "--run", str(run), "--to", str(tmp_path / "exported\nx")]) == 0
    assert main(["suggest", "--images", str(frames), "--masks", str(masks), "--output", str(run), "-k", "1",
                 "--min-mask-percent", "0", "--weights", str(checkpoint)]) == 0
    said = capsys.readouterr()
    assert len(said.out.splitlines()) == 2 and len(said.err.splitlines()) == 1, said


def test_suggest_takes_the_size_and_frames_from_the_run_and_says_so(square_clip, tmp_path, checkpoint, capsys,
                                                                    monkeypatch):
    import xmempp.api

    frames, masks = square_clip
    common = ["--images", str(frames), "--masks", str(masks), "--weights", str(checkpoint), "--quiet"]
    assert main(["run", *common, "--output", str(tmp_path / "out"), "--frames", "0,6", "--size", "96"]) == 0
    capsys.readouterr()

    def no_network(*args, **kwargs):
        raise AssertionError("suggest built the network: it recomputed the run's keys")

    monkeypatch.setattr(xmempp.api, "load_network", no_network)
    assert main(["suggest", *common, "--output", str(tmp_path / "out"), "-k", "2", "--min-mask-percent", "0"]) == 0
    printed = capsys.readouterr()
    assert printed.err.strip() == (f"using the run's size 96 and annotated frames 0,6, from {tmp_path / 'out' / 'manifest.json'}"
                                   " (give --size or --frames for others)")
    assert not {0, 6} & {int(i) for i in printed.out.strip().split(",")}


def test_suggest_answers_on_stdout_when_its_notes_cannot_be_written(square_clip, tmp_path, checkpoint, capsys,
                                                                    monkeypatch):
    """`suggest ... 2>/dev/full` exited 1 with nothing anywhere: its note about the run's size could not be written,
    and the suggestions were lost with it (seventeenth hostile round)."""
    frames, masks = square_clip
    common = ["--images", str(frames), "--masks", str(masks), "--weights", str(checkpoint), "--quiet"]
    assert main(["run", *common, "--output", str(tmp_path / "out"), "--frames", "0,6", "--size", "96"]) == 0
    capsys.readouterr()

    class FullDisk:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(sys, "stderr", FullDisk())
    assert main(["suggest", *common, "--output", str(tmp_path / "out"), "-k", "2", "--min-mask-percent", "0"]) == 0
    assert not {0, 6} & {int(i) for i in capsys.readouterr().out.strip().split(",")}


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_an_answer_stdout_cannot_take_is_named_and_the_export_is_done(tmp_path):
    """`export ... >/dev/full` said only "error: no space left on the device", naming no file, though every entry
    was written (twenty-eighth hostile round)."""
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.ones((8, 8), np.uint8), "L").save(masks / "f0.png")
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "xmempp", "export", "--run", str(masks), "--to",
                               str(tmp_path / "out"), "--formats", "coco"], stdout=full, stderr=subprocess.PIPE,
                              text=True, cwd=Path(__file__).parents[1], timeout=300)
    assert (done.returncode, done.stderr) == (1, "error: the work is done, but its answer could not be written to "
                                                 "standard output (no space left on the device)\n")
    assert (tmp_path / "out" / "coco.json").is_file()


def test_an_answer_to_a_stdout_closed_at_start_is_named_and_the_export_is_done(tmp_path):
    """`suggest ... >&-` exited 0 with nothing printed: its answer was lost without a word (thirtieth hostile
    round). It fails as `>/dev/full` does."""
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.ones((8, 8), np.uint8), "L").save(masks / "f0.png")
    done = subprocess.run(["sh", "-c", '"$0" -m xmempp export --run "$1" --to "$2" --formats coco >&-', sys.executable,
                           str(masks), str(tmp_path / "out")], stderr=subprocess.PIPE, text=True,
                          cwd=Path(__file__).parents[1], timeout=300)
    assert (done.returncode, done.stderr) == (1, "error: the work is done, but its answer could not be written to "
                                                 "standard output (it was closed when the command started)\n")
    assert json.loads((tmp_path / "out" / "coco.json").read_text())["images"]


def test_suggest_says_why_it_recomputes_keys_as_a_message_not_a_python_warning(square_clip, tmp_path, checkpoint):
    frames, masks = square_clip
    common = ["--images", str(frames), "--masks", str(masks), "--weights", str(checkpoint), "--quiet"]
    assert main(["run", *common, "--output", str(tmp_path / "out"), "--size", "96"]) == 0
    result = subprocess.run([sys.executable, "-m", "xmempp", "suggest", *common, "--output", str(tmp_path / "out"),
                             "--size", "64", "-k", "1", "--min-mask-percent", "0"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"using the run's annotated frames 0, from {tmp_path / 'out' / 'manifest.json'} (give --size or --frames for "
        "others)",
        f"WARNING: the run in {tmp_path / 'out'} processed frames at size 96, these suggestions at 64: computing every "
        "frame's keys again (the network runs on every frame)"]


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


@pytest.mark.parametrize("arguments", [["-k", "0"], ["--alpha", "2"], ["--size", "8"], ["--frames", "-1"],
                                       ["--frames", "0,-3"], ["--min-mask-percent", "101"], ["-k", "two"]])
def test_argument_errors_exit_2_before_the_weights_load(arguments, tmp_path, monkeypatch, capsys):
    from xmempp.model import weights

    def no_loading(*args, **kwargs):
        raise AssertionError("the weights must not load for bad arguments")

    monkeypatch.setattr(weights, "ensure_weights", no_loading)
    monkeypatch.setattr(weights, "load_network", no_loading)
    with pytest.raises(SystemExit) as exit_info:
        main(["suggest", "--images", str(tmp_path), "--masks", str(tmp_path), "--output", str(tmp_path), *arguments])
    assert exit_info.value.code == 2
    assert arguments[0] in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "suggest"])
def test_a_bad_precision_name_is_an_argument_error_naming_the_choices(command, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--images", str(tmp_path), "--masks", str(tmp_path), "--output", str(tmp_path),
              "--precision", "fp16"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--precision" in error and "'fp32', 'bf16', 'auto'" in error


def test_run_with_precision_auto_names_the_precision_that_runs(square_clip, tmp_path, checkpoint, capsys):
    frames, masks = square_clip
    assert main(["run", "--images", str(frames), "--masks", str(masks), "--weights", str(checkpoint), "--size", "96",
                 "--output", str(tmp_path / "out"), "--precision", "auto"]) == 0
    from xmempp.precision import resolve_precision

    assert f"propagating ({resolve_precision('auto', torch.device('cpu'))})" in capsys.readouterr().err


def _failing_run(monkeypatch, error: BaseException) -> None:
    import xmempp.api

    def run_on_video(*args, **kwargs):
        raise error

    monkeypatch.setattr(xmempp.api, "run_on_video", run_on_video)


def _run(tmp_path, *extra: str) -> int:
    return main(["run", "--images", str(tmp_path), "--masks", str(tmp_path), "--output", str(tmp_path / "o"),
                 "--quiet", *extra])


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to "
                 "allocate 9663676416 bytes."),
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    OutOfMemoryError("out of memory while propagating frame 3 at processing size 480"),
])
def test_out_of_memory_says_so_and_suggests_a_smaller_size(error, tmp_path, monkeypatch, capsys):
    _failing_run(monkeypatch, error)
    assert _run(tmp_path, "--size", "480") == 1
    message = capsys.readouterr().err
    assert "out of memory" in message and "--size 360" in message
    assert "bug" not in message


def test_a_bug_is_reported_as_a_bug_with_its_traceback(tmp_path, monkeypatch, capsys, caplog):
    _failing_run(monkeypatch, ValueError("operands could not be broadcast together"))
    assert _run(tmp_path) == 1
    assert "bug" in capsys.readouterr().err
    assert any(record.exc_info and record.exc_info[0] is ValueError for record in caplog.records)


def test_a_machine_without_proc_is_said_as_such_not_as_a_bug(tmp_path, monkeypatch, capsys):
    """Without /proc, torch failed in a model step with "Failed to initialize cpuinfo!", reported as a bug in xmempp
    (thirty-third hostile round)."""
    _failing_run(monkeypatch, RuntimeError("Failed to initialize cpuinfo!"))
    assert _run(tmp_path) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: torch cannot read this machine's processor description (/proc/cpuinfo)")
    assert "bug" not in message


def test_an_input_error_is_not_reported_as_a_bug(tmp_path, monkeypatch, capsys):
    _failing_run(monkeypatch, XMemPPError("mask frame_000003.png is truncated"))
    assert _run(tmp_path) == 1
    message = capsys.readouterr().err
    assert message.strip() == "error: mask frame_000003.png is truncated"


def test_suggest_from_a_folder_without_a_run_names_the_folder(square_clip, tmp_path, checkpoint, capsys):
    frames, masks = square_clip
    (tmp_path / "empty").mkdir()
    code = main(["suggest", "--images", str(frames), "--masks", str(masks), "--output", str(tmp_path / "empty"),
                 "--weights", str(checkpoint), "--frames", "0", "--size", "96"])
    assert code == 1
    assert f"error: no run's outputs in {tmp_path / 'empty'}: it holds no masks/ folder" in capsys.readouterr().err


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`xmempp suggest ... | head -c0` ended in 'unexpected internal failure (BrokenPipeError)', a bug report for
    a pipe closed by its reader (eighth hostile round)."""
    script = ("import sys; from xmempp import cli; "
              "cli.COMMANDS['export'] = lambda args, progress: print('3,36,1,21\\n' * 100000) or 0; "
              "sys.exit(cli.main(['export', '--run', 'r', '--to', 't']))")
    command = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    command.stdout.close()  # the reader goes away before the first line
    stderr = command.stderr.read().decode()
    assert command.wait(60) == 1
    assert "internal failure" not in stderr and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("arguments, option", [
    (["export", "--run", "out", "--to", ""], "--to"),
    (["run", "--images", "", "--masks", "a", "--output", "o"], "--images"),
    (["run", "--images", "f", "--masks", "a", "--output", ""], "--output"),
])
def test_an_empty_path_is_an_argument_error_naming_the_option(tmp_path, monkeypatch, capsys, arguments, option):
    """`export --to ''` wrote the export into the current folder: Path('') is '.' (eighth hostile round)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert f"argument {option}: expected a path, got an empty one ('')" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_path_no_file_can_have_is_an_argument_error_naming_the_option(tmp_path, capsys):
    """`run --output <a 300-character name>` was refused naming the Python API's parameter, 'masks_out_path ...
    cannot name a file', which no command-line user gave (eighth hostile round)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--images", str(tmp_path), "--masks", str(tmp_path), "--output", str(tmp_path / ("x" * 300))])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument --output: the path " in error and "cannot name a file: the name is too long" in error, error
    assert list(tmp_path.iterdir()) == []


def test_run_refuses_a_video_that_is_a_fifo_before_anything_is_written(tmp_path, capsys):
    """mkfifo v.mp4; xmempp run --images v.mp4 waited for a writer without end (eighth hostile round)."""
    import os

    os.mkfifo(tmp_path / "v.mp4")
    (tmp_path / "masks").mkdir()
    assert main(["run", "--images", str(tmp_path / "v.mp4"), "--masks", str(tmp_path / "masks"), "--output",
                 str(tmp_path / "out"), "--quiet"]) == 1
    assert f"the video {tmp_path / 'v.mp4'} is not a regular file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arguments", [["--size", "\u0664\u0668"], ["--frames", "\u0660"], ["-k", "\uff12"],
                                       ["--alpha", "\u0660.\u0665"], ["--size", "4_8"]],
                         ids=["Arabic-Indic 48", "Arabic-Indic 0", "fullwidth 2", "Arabic-Indic 0.5", "underscore"])
def test_number_arguments_take_ascii_digits_only(arguments, tmp_path, capsys):
    """`--size ٤٨` and `--frames ٠` were taken as 48 and 0, as Python's int() reads any script's digits (eighth
    hostile round)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["suggest", "--images", str(tmp_path), "--masks", str(tmp_path), "--output", str(tmp_path), *arguments])
    assert exit_info.value.code == 2
    assert f"argument {arguments[0]}" in capsys.readouterr().err


def test_an_export_of_a_run_folder_named_in_bytes_that_are_not_utf8_names_the_folder(tmp_path, capsys):
    """export --run $'out\\xfd' without --video-name blamed 'the video name', which the person never gave: it is
    the folder's name, the default (ninth hostile round)."""
    run = Path(os.fsdecode(bytes(tmp_path) + b"/out\xfd"))
    (run / "masks").mkdir(parents=True)
    Image.fromarray(np.ones((8, 8), np.uint8)).save(run / "masks" / "frame_000000.png")
    assert main(["export", "--run", str(run), "--to", str(tmp_path / "x"), "--formats", "coco"]) == 1
    error = capsys.readouterr().err
    assert "the run folder's name 'out\\udcfd', the video's name in coco and youtube-vis by default, is not UTF-8 " \
           "text" in error and "give --video-name" in error, error


@pytest.mark.parametrize(("error", "says"), [
    (ImportError("libtorch_cpu.so: failed to map segment from shared object"),
     "error: cannot load a library (libtorch_cpu.so: failed to map segment from shared object): the process's "
     "memory limit is too low"),
    (ModuleNotFoundError("No module named 'pycocotools'", name="pycocotools"),
     "error: the package 'pycocotools' is not installed: install the requirements"),
], ids=["ulimit -v", "a missing package"])
def test_a_library_the_machine_cannot_load_is_said_in_words(monkeypatch, capsys, error, says):
    """`ulimit -v 1500000; xmempp run ...` ended in 'unexpected internal failure (ImportError: libtorch_cpu.so:
    failed to map segment from shared object)' (tenth hostile round)."""
    from xmempp import cli

    def fails(args, progress):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "export", fails)
    assert main(["export", "--run", "r", "--to", "t"]) == 1
    assert says in capsys.readouterr().err


def test_a_library_that_cannot_be_loaded_while_the_arguments_are_read_is_said_in_words(monkeypatch, capsys):
    """`ulimit -v 2000000; xmempp export ... --formats coco` showed a traceback: --formats imports the exporters
    (and torch) while argparse reads it (twenty-third hostile round)."""
    from xmempp import cli

    def starved(text):
        raise ImportError("libtorch_cpu.so: failed to map segment from shared object")

    monkeypatch.setattr(cli, "_format_list", starved)
    assert main(["export", "--run", "r", "--to", "t", "--formats", "coco"]) == 1
    assert capsys.readouterr().err == (
        "error: cannot load a library (libtorch_cpu.so: failed to map segment from shared object): the process's "
        "memory limit is too low to map it (ulimit -v?); allow more memory\n")


def exported_with_names_inside(tmp_path) -> tuple[Path, Path]:
    """(a run folder of one mask, exported to tmp_path/to; a names file put into the export's Annotations/)."""
    run = tmp_path / "run"
    (run / "masks").mkdir(parents=True)
    Image.fromarray(np.ones((8, 8), np.uint8)).save(run / "masks" / "frame_000000.png")
    assert main(["export", "--run", str(run), "--to", str(tmp_path / "to")]) == 0
    names = tmp_path / "to" / "Annotations" / "names.csv"
    names.write_text("id,name\n1,chair\n")
    return run, names


@pytest.mark.parametrize("given", ["--names", "the run's objects.csv", "--names, bind-mounted from inside"])
def test_export_overwrite_refuses_a_names_file_inside_an_entry_it_replaces(tmp_path, capsys, given):
    """`export --overwrite --names to/Annotations/names.csv` applied the names, then deleted the file with the
    Annotations/ it replaced (twenty-fourth hostile round); so did the run's objects.csv as a link to it
    (twenty-fifth), and a names file elsewhere bind-mounted from inside the entry (thirty-second)."""
    import subprocess

    from tests.test_outputs import bind_mount

    run, names = exported_with_names_inside(tmp_path)
    mounted = None
    if given == "--names":
        options = ["--names", str(names)]
    elif given == "the run's objects.csv":
        (run / "objects.csv").symlink_to(names)
        options = []
    else:
        mounted = tmp_path / "names.csv"
        mounted.write_text("")
        bind_mount(names, mounted)
        options = ["--names", str(mounted)]
    capsys.readouterr()
    try:
        assert main(["export", "--run", str(run), "--to", str(tmp_path / "to"), *options, "--overwrite"]) == 1
        assert f"is in {tmp_path / 'to' / 'Annotations'}, which export --overwrite replaces whole" \
            in capsys.readouterr().err
    finally:
        if mounted is not None:
            subprocess.run(["umount", str(mounted)], check=True)
    assert names.read_text() == "id,name\n1,chair\n"


def test_export_out_of_memory_advises_no_size_it_does_not_take(monkeypatch, capsys):
    """Export under ulimit -v said 'try a smaller --size (for example --size 480)': export has no --size (twentieth
    hostile round)."""
    from xmempp import cli

    def fails(args, progress):
        raise MemoryError()

    monkeypatch.setitem(cli.COMMANDS, "export", fails)
    assert main(["export", "--run", "r", "--to", "t"]) == 1
    said = capsys.readouterr().err
    assert said.startswith("error: out of memory; ") and "--size" not in said, said


def test_an_import_of_xmempp_that_fails_is_a_bug(monkeypatch, capsys):
    from xmempp import cli

    def fails(args, progress):
        raise ModuleNotFoundError("No module named 'xmempp.gone'", name="xmempp.gone")

    monkeypatch.setitem(cli.COMMANDS, "export", fails)
    assert main(["export", "--run", "r", "--to", "t"]) == 1
    assert "this is a bug" in capsys.readouterr().err


def _cli_script(command_body: str, *arguments: str) -> str:
    """A Python program running the CLI's `export` command replaced by `command_body` (a lambda's body)."""
    return ("import sys; from xmempp import cli; "
            f"cli.COMMANDS['export'] = lambda args, progress: {command_body}; "
            f"sys.exit(cli.main(['export', '--run', 'r', '--to', 't', {', '.join(map(repr, arguments))}]))")


def test_a_command_whose_stderr_is_closed_still_runs():
    """`xmempp run ... 2>&-` ended in 'unexpected internal failure (AttributeError: 'NoneType' object has no
    attribute 'write')': Python gives None for a stream closed at start (tenth hostile round)."""
    script = _cli_script("sys.stderr.write('progress') and 0")
    finished = subprocess.run(["sh", "-c", '"$0" -c "$1" 2>&-', sys.executable, script], capture_output=False,
                              stdout=subprocess.PIPE, timeout=60)
    assert finished.returncode == 0


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGXCPU"])
def test_sigterm_ends_a_command_through_its_clean_up(tmp_path, signal_name):
    """SIGTERM (or SIGHUP) during `run` on a video left every decoded frame in $TMPDIR/xmempp-frames-*: their
    default ended the process at once (tenth hostile round). They now end it as Ctrl-C does; so does SIGXCPU, a
    soft CPU-time limit (`ulimit -S -t`, eleventh round)."""
    import signal
    import time

    body = ("(lambda folder: (open(sys.argv[1] + '/started', 'w').close(), __import__('time').sleep(60)))"
            "(__import__('tempfile').TemporaryDirectory(dir=sys.argv[1]).__enter__()) and 0")
    script = _cli_script(body).replace("sys.exit(", "sys.argv[1:] = [sys.argv[1]]; sys.exit(", 1)
    command = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline and command.poll() is None, command.stderr.read()
        time.sleep(0.05)
    number = getattr(signal, signal_name)
    command.send_signal(number)
    assert command.wait(60) == 128 + number
    assert f"stopped by {signal_name}" in command.stderr.read().decode()
    assert [p.name for p in tmp_path.iterdir()] == ["started"]  # the temporary folder was removed


def test_pillows_warning_about_a_large_image_is_not_printed(monkeypatch):
    """A PNG of 90 megapixels printed '.../PIL/Image.py:3578: DecompressionBombWarning: ...', a Python warning with
    a library's path, where the CLI's warnings are one-line messages (tenth hostile round)."""
    import warnings

    from PIL import Image

    from xmempp import cli

    shown = []

    def warns(args, progress):
        with warnings.catch_warnings(record=True) as seen:  # what the filters in place let through
            warnings.warn_explicit("Image size (90000000 pixels) exceeds limit of 89478485 pixels, could be "
                                   "decompression bomb DOS attack.", Image.DecompressionBombWarning, "Image.py",
                                   3578, module="PIL.Image")
        shown.extend(seen)
        return 0

    monkeypatch.setitem(cli.COMMANDS, "export", warns)
    with warnings.catch_warnings():  # the filter main adds goes with this test
        warnings.simplefilter("always")
        assert main(["export", "--run", "r", "--to", "t"]) == 0
    assert shown == []


def test_a_name_stdout_cannot_encode_is_escaped_not_a_bug():
    """Under LC_ALL=C without Python's UTF-8 mode, stdout is ASCII: the last line of a finished run naming `é`
    failed with 'unexpected internal failure (UnicodeEncodeError)' after its masks were written (eleventh round)."""
    script = _cli_script("print('wrote 2 masks to out/\\u00e9') and 0")
    environment = {**os.environ, "PYTHONIOENCODING": "ascii"}
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, env=environment, timeout=60)
    assert finished.returncode == 0, finished.stderr.decode()
    assert finished.stdout.decode().strip() == "wrote 2 masks to out/\\xe9"


def test_no_usable_temporary_folder_is_said_in_words(monkeypatch, capsys):
    """`ulimit -f 0` printed Python's 'error: [Errno 2] No usable temporary directory found in [...]'."""
    import errno

    from xmempp import cli

    def no_temporary_folder(args, progress):
        raise FileNotFoundError(errno.ENOENT, "No usable temporary directory found in ['/tmp', '/var/tmp']")

    monkeypatch.setitem(cli.COMMANDS, "export", no_temporary_folder)
    assert main(["export", "--run", "r", "--to", "t"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no usable temporary folder: none of TMPDIR, /tmp") and "ulimit -f" in error
    assert "Errno" not in error


def test_a_stop_signal_during_a_batch_video_stops_the_batch_not_the_video():
    """SIGTERM while batch ran a video was caught as that video's failure ('job a failed with an unexpected error,
    a bug in xmempp', '_Stopped: 15' in summary.csv) and the batch went on (eleventh hostile round)."""
    import signal

    from xmempp import cli
    from xmempp.jobs import run_safely

    def stopped_video(network, job):
        raise cli._Stopped(signal.SIGTERM)

    with pytest.raises(cli._Stopped):
        run_safely(stopped_video, None, "a")


def test_a_stopped_export_says_what_it_leaves_not_that_masks_are_kept(monkeypatch, capsys):
    """SIGTERM during export said 'masks written so far are kept' of a command that keeps none (thirteenth round),
    then that an earlier export "stays whole", though --overwrite replaces its entries one by one (twenty-sixth)."""
    import signal

    from xmempp import cli

    def stopped(args, progress):
        raise cli._Stopped(signal.SIGTERM)

    monkeypatch.setitem(cli.COMMANDS, "export", stopped)
    assert main(["export", "--run", "r", "--to", "t"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == ("stopped by SIGTERM: each entry is whole, this export's or an earlier "
                                               "one's (entries are replaced one by one); export again with "
                                               "--overwrite to finish")


def test_an_objects_csv_in_the_run_folder_that_is_no_file_is_refused_not_passed_over(tmp_path, capsys):
    """A folder (or a FIFO) named objects.csv in --run was skipped without a word (thirteenth round)."""
    run_folder = tmp_path / "run"
    (run_folder / "objects.csv").mkdir(parents=True)
    assert main(["export", "--run", str(run_folder), "--to", str(tmp_path / "out")]) == 1
    assert f"cannot read object names from {run_folder / 'objects.csv'}: it is a folder" in capsys.readouterr().err


def test_export_overwrite_refuses_a_names_file_in_a_replaced_entry_spelled_through_a_link_and_dotdot(tmp_path,
                                                                                                    capsys):
    """`--names L/../names.csv`, L a link to a folder inside the entry replaced, passed the check (its spelling made
    absolute lost L) and the names file was deleted with the entry (thirty-fifth hostile round)."""
    run, names = exported_with_names_inside(tmp_path)
    (names.parent / "sub").mkdir()
    (tmp_path / "L").symlink_to(names.parent / "sub", target_is_directory=True)
    capsys.readouterr()
    assert main(["export", "--run", str(run), "--to", str(tmp_path / "to"), "--names",
                 str(tmp_path / "L" / ".." / "names.csv"), "--overwrite"]) == 1
    assert "which export --overwrite replaces whole" in capsys.readouterr().err
    assert names.read_text() == "id,name\n1,chair\n"


def test_export_overwrite_accepts_a_names_file_with_another_name_outside_the_replaced_entry(tmp_path, capsys):
    """A hard link outside the entry to a names file inside it was refused as "in" the entry, with advice that could
    not be followed: the file keeps its outside name when the entry goes (thirty-sixth hostile round)."""
    run, names = exported_with_names_inside(tmp_path)
    outside = tmp_path / "names.csv"
    os.link(names, outside)
    assert main(["export", "--run", str(run), "--to", str(tmp_path / "to"), "--names", str(outside),
                 "--overwrite"]) == 0, capsys.readouterr().err
    assert outside.read_text() == "id,name\n1,chair\n"


def _deep_folder(top: Path, levels: int, name: str) -> Path:
    """`top`/`name`/`name`/... `levels` deep, made through open folders (its path may pass PATH_MAX); returns the
    path of its deepest folder, as spelled."""
    top.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(top, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir(name, dir_fd=descriptor)
        inner = os.open(name, os.O_RDONLY, dir_fd=descriptor)
        os.close(descriptor)
        descriptor = inner
    os.close(descriptor)
    return top.joinpath(*[name] * levels)


def _spelled_through_links(path: Path, top: Path, links_in: Path) -> Path:
    """`path` (below `top`) spelled through links of ten folders each, so that no spelling passes PATH_MAX."""
    parts, spelled = path.relative_to(top).parts, top
    for start in range(0, len(parts), 10):
        hop = links_in / f"hop{start}"
        hop.symlink_to(spelled.joinpath(*parts[start:start + 10]), target_is_directory=True)
        spelled = hop
    return spelled


def test_export_overwrite_finds_a_names_file_past_path_max_in_a_replaced_entry(tmp_path, capsys):
    """A names file past PATH_MAX inside the replaced entry, given through a link that lies past PATH_MAX too, was
    read, then deleted with the entry: its path could not be followed to the end, and os.walk skipped the folders
    it could not list (thirty-sixth hostile round)."""

    run, _ = exported_with_names_inside(tmp_path)
    inside = _deep_folder(tmp_path / "to" / "Annotations", 25, "d" * 200)
    (tmp_path / "inside").mkdir()
    inside = _spelled_through_links(inside, tmp_path / "to", tmp_path / "inside")
    (inside / "names.csv").write_text("id,name\n1,chair\n")
    (tmp_path / "outside").mkdir()
    outside = _spelled_through_links(_deep_folder(tmp_path / "R", 22, "r" * 200), tmp_path, tmp_path / "outside")
    (outside / "Lz").symlink_to(inside, target_is_directory=True)
    capsys.readouterr()
    try:
        assert main(["export", "--run", str(run), "--to", str(tmp_path / "to"), "--names",
                     str(outside / "Lz" / "names.csv"), "--overwrite"]) == 1
        error = capsys.readouterr().err
        assert "which export --overwrite replaces whole" in error, error
        assert (inside / "names.csv").read_text() == "id,name\n1,chair\n"
    finally:
        _remove_deep(tmp_path, "to")


def test_export_overwrite_replaces_an_entry_a_thousand_folders_deep(tmp_path, capsys):
    """Any export --overwrite whose entry held folders 1000 levels deep gave "unexpected internal failure
    (RecursionError) ... this is a bug": os.walk recursed (thirty-sixth hostile round)."""
    run, names = exported_with_names_inside(tmp_path)
    names.unlink()
    _deep_folder(tmp_path / "to" / "Annotations", 1100, "d")
    try:
        assert main(["export", "--run", str(run), "--to", str(tmp_path / "to"), "--overwrite"]) == 0, \
            capsys.readouterr().err
        assert sorted(os.listdir(tmp_path / "to" / "Annotations")) == ["frame_000000.png"]
    finally:
        _remove_deep(tmp_path, "to")


def _remove_deep(folder: Path, name: str) -> None:
    """Python 3.11's rmtree, which pytest cleans with, recurses too deep and cannot name paths past PATH_MAX."""
    from xmempp.mounts import remove_tree

    descriptor = os.open(folder, os.O_RDONLY)
    try:
        remove_tree(name, descriptor)
    finally:
        os.close(descriptor)


def test_ctrl_c_while_the_arguments_are_read_says_nothing_was_done(monkeypatch, capsys):
    """Ctrl-C in the first second of `export --formats ...` (its check imports the exporters, and torch) printed a
    traceback of fifty lines (thirty-sixth hostile round)."""
    from xmempp import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["export", "--run", "r", "--to", "t", "--formats", "davis"]) == 130
    assert capsys.readouterr().err == "interrupted: nothing was done\n"


def test_export_overwrite_refuses_a_names_file_whose_names_are_spread_over_the_replaced_entries(tmp_path, capsys):
    """A names file with one name in Annotations/ and one in mattes/ (hard links), given through a file bind-mounted
    outside: each entry alone kept a name of it, so it was read, then deleted with the two (thirty-seventh hostile
    round)."""
    from tests.test_outputs import bind_mounted

    run, names = exported_with_names_inside(tmp_path)
    assert main(["export", "--run", str(run), "--to", str(tmp_path / "to"), "--formats", "davis,mattes",
                 "--overwrite"]) == 0
    names.write_text("id,name\n1,chair\n")
    os.link(names, tmp_path / "to" / "mattes" / "names.csv")
    given = tmp_path / "names.csv"
    given.write_text("")
    with bind_mounted(names, given):
        capsys.readouterr()
        assert main(["export", "--run", str(run), "--to", str(tmp_path / "to"), "--formats", "davis,mattes",
                     "--names", str(given), "--overwrite"]) == 1
        assert "which export --overwrite replaces whole" in capsys.readouterr().err
    assert names.read_text() == "id,name\n1,chair\n"


def test_ctrl_c_while_the_command_line_loads_says_nothing_was_done(monkeypatch, capsys):
    """Ctrl-C in the first 50 ms of `python -m xmempp` (while xmempp.cli is imported) printed a traceback
    (thirty-seventh hostile round)."""
    import builtins
    import runpy
    import sys

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "xmempp.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    monkeypatch.delitem(sys.modules, "xmempp.__main__", raising=False)
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("xmempp", run_name="__main__")
    assert exited.value.code == 130
    assert capsys.readouterr().err == "interrupted: nothing was done\n"
