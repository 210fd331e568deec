"""The error types xmempp raises for problems a person can fix (bad files, bad arguments, too little memory).

`XMemPPError` is deliberately not a `ValueError`: a `ValueError` from inside the engine is a bug, and
callers that show `XMemPPError` messages to people must never show a bug as a problem with their input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class XMemPPError(Exception):
    """A problem with the input, named in the message (the file, the frame, the limit)."""


class EmptyAnnotationError(XMemPPError):
    """An annotation without any object pixel."""


class OutOfMemoryError(XMemPPError):
    """The work did not fit in (GPU or CPU) memory at this processing size; a smaller size needs less."""


_OUT_OF_MEMORY_MARKERS = ("out of memory", "not enough memory", "defaultcpuallocator", "can't allocate memory")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` says an allocation failed (torch's CUDA and CPU allocators, numpy, Python)."""
    if isinstance(error, MemoryError | OutOfMemoryError):
        return True
    # torch.cuda.OutOfMemoryError is a RuntimeError saying "CUDA out of memory"; the CPU allocator says
    # "DefaultCPUAllocator: not enough memory". Matching the text keeps torch out of this module's imports.
    return isinstance(error, RuntimeError) and any(marker in str(error).lower() for marker in _OUT_OF_MEMORY_MARKERS)


@contextlib.contextmanager
def out_of_memory_as_error(doing: str, size: int | None) -> Iterator[None]:
    """Turn an allocation failure into an OutOfMemoryError that says what ran out and at which size."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        at = "the original resolution" if size is None else f"processing size {size}"
        raise OutOfMemoryError(f"out of memory while {doing} at {at}: a smaller processing size needs less "
                               "memory") from error
