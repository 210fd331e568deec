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
])
def test_allocation_failures_are_recognised(error):
    assert is_out_of_memory(error)


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
    assert _message(XMemPPError("frame 3 is past the end")).endswith("Frame 3 is past the end")


def test_the_app_suggests_a_smaller_size_when_out_of_memory():
    from demo.feedback import message_for as _message

    message = _message(OutOfMemoryError("out of memory while propagating frame 3 at processing size 480"))
    assert "out of memory" in message.lower() and "--max-side" in message
