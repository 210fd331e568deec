"""Checking the types of the public Python API's arguments (VideoSession, run_on_video, candidate selection).

A caller's wrong type (a float frame index, a string size) is an XMemPPError naming the parameter and what it
takes, never a TypeError from deep inside (`list indices must be integers or slices, not float`). Values are not
converted: 1.5 is no frame, and `"3"` is a caller's mistake, not a frame number.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

from xmempp.errors import XMemPPError


def whole_number(value: Any, parameter: str) -> int:
    """`value` as an int when it is one (numpy's integers too; a bool is no number), else an XMemPPError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise XMemPPError(f"{parameter} must be a whole number (an int), got {_described(value)}")
    return int(value)


def real_number(value: Any, parameter: str) -> float:
    """`value` as a float when it is a real number (an int or a float; a bool is no number), else an XMemPPError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise XMemPPError(f"{parameter} must be a number, got {_described(value)}")
    return float(value)


def frame_numbers(values: Any, parameter: str) -> list[int]:
    """The frame numbers in an iterable of whole numbers (a list, a tuple, a range...), in order."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise XMemPPError(f"{parameter} must be a list of frame numbers (ints), got {_described(values)}")
    return [whole_number(value, f"each of {parameter}") for value in values]


def _described(value: Any) -> str:
    return f"{value!r:.60} ({type(value).__name__})"
