"""Errors for people: what counts as a person's problem, and out of memory said as such everywhere."""

from __future__ import annotations

import pytest
import torch

from xmempp.errors import OutOfMemoryError, XMemPPError, is_out_of_memory, out_of_memory_as_error


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to "
                 "allocate 9663676416 bytes."),
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    MemoryError(),
    ImportError(".../pycocotools/_mask.cpython-311-x86_64-linux-gnu.so: failed to map segment from shared object"),
    RuntimeError("could not create a primitive"),
    RuntimeError("can't start new thread"),
])
def test_allocation_failures_are_recognised(error):
    """A library imported at its first use under `ulimit -v` counts too: a COCO export said 'Something went wrong
    (ImportError)' (twentieth hostile round); so do oneDNN's and the thread's words there (twenty-first round)."""
    assert is_out_of_memory(error)


def test_a_missing_library_is_not_out_of_memory():
    assert not is_out_of_memory(ImportError("No module named 'pycocotools'"))


def test_a_tensor_too_large_to_count_is_out_of_memory_not_a_bug():
    """--size 1000000000000 (or a manifest's size) asked torch for a tensor whose byte count overflows: its
    RuntimeError ended `run` and `suggest` in 'unexpected internal failure ... this is a bug' (issue 16, round
    four)."""
    with pytest.raises(RuntimeError) as raised:
        torch.empty(1, 3, 10**12, 10**12)
    assert is_out_of_memory(raised.value)


def test_other_runtime_errors_are_not_out_of_memory():
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_out_of_memory_becomes_an_error_naming_the_work_and_the_size():
    expected = pytest.raises(OutOfMemoryError, match="propagating frame 7 at processing size 480")
    with expected, out_of_memory_as_error("propagating frame 7", 480):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 1 bytes")


def test_other_errors_pass_through_unchanged():
    with pytest.raises(RuntimeError, match="shapes"), out_of_memory_as_error("propagating", 480):
        raise RuntimeError("shapes cannot be multiplied")


def test_the_app_shows_a_bug_as_a_bug_not_as_a_problem_with_the_input():
    from demo.feedback import message_for as _message

    assert "went wrong" in _message(ValueError("operands could not be broadcast together"))
    assert _message(XMemPPError("frame 3 is past the end")) == "⚠ frame 3 is past the end"


def test_the_app_says_a_servers_file_system_problem_in_words_naming_the_file_alone():
    """An unwritable work root or an unreadable example clip ended in 'Something went wrong (PermissionError)'
    (eighth hostile round): the server's set-up, not a bug, and not the visitor's doing."""
    import errno

    from demo.feedback import message_for as _message

    message = _message(PermissionError(errno.EACCES, "Permission denied", "/srv/xmempp/work/session-1/clip.mp4"))
    assert message == ("⚠ the server cannot use its file clip.mp4 (permission denied); nothing you made is lost: "
                       "tell whoever runs this app")
    # a folder of the server's, made or not yet, is not named (round 34 saw "its file out" before out/ was made)
    message = _message(PermissionError(errno.EACCES, "Permission denied", "/srv/xmempp/work/session-1/frames"))
    assert message.startswith("⚠ the server cannot use its files (permission denied)"), message
    assert _message(OSError(errno.ENOSPC, "No space left on device")).startswith(
        "⚠ the server has no room to write your results (no space left on the device)")


def test_the_app_says_a_missing_file_by_its_name():
    """In-process loading of a dangling link showed "[Errno 2] No such file or directory: 'l.mp4'"."""
    import errno

    from demo.feedback import message_for as _message

    assert _message(FileNotFoundError(errno.ENOENT, "No such file or directory", "/tmp/x/l.mp4")) == \
        "⚠ l.mp4 was not found"


def test_the_app_suggests_a_smaller_size_when_out_of_memory():
    from demo.feedback import message_for as _message

    message = _message(OutOfMemoryError("out of memory while propagating frame 3 at processing size 480"))
    assert "out of memory" in message.lower() and "--max-side" in message


@pytest.mark.parametrize("error", [MemoryError(), ImportError("x.so: failed to map segment from shared object")])
def test_the_app_says_a_bare_out_of_memory_in_words(error):
    """A bare MemoryError (zipfile's LZMA reader under ulimit -v) was shown as '⚠ ; choose a smaller processing
    size ...' (twentieth hostile round)."""
    from demo.feedback import message_for as _message

    assert _message(error).startswith("⚠ the server ran out of memory; nothing you made is lost: choose a smaller ")


@pytest.mark.parametrize(("name", "expected"), [
    ("frame_000001.png", "frame_000001.png"),
    ("my clip (1).mp4", "my clip (1).mp4"),
    ("é ü.png", "é ü.png"),
    ("a\nforged line.png", r"'a\nforged line.png'"),
    ("b\r\x1b[2Kc.png", r"'b\r\x1b[2Kc.png'"),
    ("d\u2028e.png", r"'d\u2028e.png'"),
])
def test_a_name_is_shown_as_it_is_unless_a_character_would_break_the_line(name, expected):
    from xmempp.errors import shown

    assert shown(name) == expected and "\n" not in shown(name) and shown(name).isprintable()


def test_a_file_system_problem_names_the_destination_when_the_system_names_a_temporary(tmp_path):
    """An atomic write's refused hidden file (.coco.json.<hex>.tmp) was the path the message named."""
    import errno

    from xmempp.errors import file_system_problems_as_error

    with pytest.raises(XMemPPError) as raised, file_system_problems_as_error(f"write {tmp_path}/coco.json",
                                                                              name_the_path=False):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(tmp_path / ".coco.json.ab12.tmp"))
    assert str(raised.value) == f"cannot write {tmp_path}/coco.json: operation not permitted"


def test_the_app_names_files_under_the_servers_temporary_folder_by_their_name_alone():
    import tempfile
    from pathlib import Path

    from demo.feedback import message_for as _message

    work = Path(tempfile.gettempdir()) / "xmempp-app-1-abc" / "session-x" / "annotations" / "frame_000000.png"
    message = _message(XMemPPError(f"cannot read mask frame_000000.png: the file is corrupt ('{work}')"))
    assert message == "⚠ cannot read mask frame_000000.png: the file is corrupt ('frame_000000.png')"


def test_the_app_names_the_servers_temporary_folder_itself_by_its_name_alone(monkeypatch, tmp_path):
    """TMPDIR=/srv/scratch/full and its folder named in a message: only paths under it were shortened (eleventh
    hostile round, H5)."""
    import tempfile

    from demo.feedback import message_for as _message

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    message = _message(XMemPPError(f"cannot keep the frames' keys in the temporary folder {tmp_path}/scratch: "
                                   "permission denied"))
    assert message == "⚠ cannot keep the frames' keys in the temporary folder scratch: permission denied"
    assert _message(XMemPPError(f"{tmp_path}/scratched is not it")) == f"⚠ {tmp_path}/scratched is not it"


def test_a_name_the_file_system_cannot_write_is_said_with_the_fix(monkeypatch, capsys):
    """Under LC_ALL=C without Python's UTF-8 mode, a zip's frame `kadr_ş0.png` ended in 'Something went wrong
    (UnicodeEncodeError)' in the app (twelfth hostile round); the CLI and the app say what to change."""
    import sys

    from demo.feedback import message_for
    from xmempp import cli
    from xmempp.errors import unwritable_name_problem

    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    try:
        "kadr_\u015f0.png".encode("ascii")
    except UnicodeEncodeError as caught:
        error = caught
    assert unwritable_name_problem(error).startswith("the name 'kadr_\\u015f0.png' cannot be written as a file name "
                                                     "here: this system's file names are ascii only")
    assert message_for(error).startswith("⚠ the server cannot store a name you gave: the name 'kadr_\\u015f0.png'")

    def fails(args, progress):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "export", fails)
    assert cli.main(["export", "--run", "r", "--to", "t"]) == 1
    said = capsys.readouterr().err
    assert "LANG=C.UTF-8" in said and "bug" not in said
    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "utf-8")
    assert unwritable_name_problem(error) is None  # an encoding error of another kind stays a bug


def test_the_script_api_refuses_a_bare_out_of_memory_in_words():
    """A bare MemoryError outside a model run (reading a manifest) reached a script as Gradio's 'has raised an
    exception' (twenty-first hostile round)."""
    from demo.api import ApiError

    refusal = ApiError.refusing_any(MemoryError())
    assert refusal is not None and refusal.message.startswith("the server ran out of memory; nothing you made is lost")


def test_the_script_api_says_a_file_of_the_call_removed_meanwhile_in_words():
    """A call's folder swapped while it ran ended in Gradio's 'The upstream Gradio app has raised an exception',
    a raw FileNotFoundError in the log (thirty-third hostile round)."""
    import errno

    from demo.api import ApiError

    refusal = ApiError.refusing_any(FileNotFoundError(errno.ENOENT, "No such file or directory",
                                                      "/srv/work/api/call-x/video/zip-frames/000005.jpg"))
    assert refusal is not None
    assert refusal.message == ("000005.jpg was not found on the server (removed while the call ran): send the call "
                               "again")


@pytest.mark.parametrize(("code", "words"), [
    ("EBUSY", "it is busy (a mount point, or in use)"),
    ("ELOOP", "a symbolic link on the path leads back to itself"),
], ids=["busy", "loop"])
def test_a_mount_point_or_a_loop_of_links_met_while_writing_is_said_in_words_not_as_a_bug(code, words):
    """A rename onto a file bind-mounted at OUTPUT/manifest.json (EBUSY) and a folder made inside a loop of links
    (ELOOP) were reported as bugs with a traceback (twenty-eighth hostile round)."""
    import errno
    import re

    from xmempp.errors import file_system_problems_as_error

    with pytest.raises(XMemPPError, match=f"^cannot write out/manifest.json: {re.escape(words)}"), \
            file_system_problems_as_error("write out/manifest.json"):
        raise OSError(getattr(errno, code), "from the system", "out/manifest.json")


def test_an_api_call_whose_folder_moved_meanwhile_is_told_so_not_in_the_engines_words(tmp_path):
    """A call whose folder on the server was moved mid-run was refused as "temporary_root call-x is not there: give a
    folder", a parameter the caller never gave (thirty-fourth hostile round)."""
    from demo.api import _moved_meanwhile
    from xmempp.outputs import identity

    work = tmp_path / "call-x"
    work.mkdir()
    made = identity(work)
    error = XMemPPError(f"temporary_root {work} is not there: give a folder")
    assert _moved_meanwhile(work, made, error) is None
    work.rename(tmp_path / "moved")
    refusal = _moved_meanwhile(work, made, error)
    assert refusal is not None and refusal.message.startswith("the server's files for this call were moved or removed")
