"""Which number format the network computes in: float32, or bfloat16 where the device computes it natively.

`fp32` is the reference's arithmetic (on CUDA with the reference's float16 mixed precision when
`InferenceConfig.use_amp`). `bf16` runs the network under bfloat16 autocast: convolutions and matrix products in
bfloat16, reductions and the memory's similarity in float32. `auto` is bf16 where the hardware has bfloat16 units
(any CUDA GPU that supports it; a CPU with AVX512-BF16 or AMX, or an Arm CPU with the BF16 extension) and fp32
elsewhere, where bfloat16 is emulated and slower than float32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from xmempp.config import PRECISIONS, check_precision  # noqa: F401  (the choices live with the configuration)
from xmempp.errors import XMemPPError

if TYPE_CHECKING:  # torch is imported where it is used: the configuration and the CLI's checks load without it
    import torch

log = logging.getLogger(__name__)

# CPU flags (Linux /proc/cpuinfo names, also torch's) of native bfloat16 arithmetic: x86 AVX512-BF16 and AMX,
# Arm's BF16 extension.
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware: from torch's own CPU feature probe, else /proc/cpuinfo."""
    flags = torch_cpu_flags()
    if flags is None:
        try:
            flags = cpuinfo_flags(Path("/proc/cpuinfo").read_text())
        except OSError:
            return False
    return bool(flags & NATIVE_BF16_CPU_FLAGS)


def torch_cpu_flags() -> set[str] | None:
    """The CPU features torch detected (a private probe of torch >= 2.3), or None where it has none."""
    import torch

    try:
        capability = torch._C._cpu._get_cpu_capability()
    except (AttributeError, RuntimeError):
        return None
    if not isinstance(capability, dict) or "avx512_bf16" not in capability:
        return None
    return {name for name, present in capability.items() if present is True}


def cpuinfo_flags(cpuinfo: str) -> set[str]:
    """The feature flags in /proc/cpuinfo's text (`flags` lines on x86, `Features` on Arm)."""
    return {flag for line in cpuinfo.splitlines() if line.startswith(("flags", "Features")) and ":" in line
            for flag in line.split(":", 1)[1].split()}


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively (and so faster than float32)."""
    import torch

    if device.type == "cuda":  # bfloat16 tensor cores from Ampere (compute capability 8) on
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu" and cpu_has_native_bf16()


def resolve_precision(precision: str, device: torch.device) -> str:
    """`fp32` or `bf16`: the precision that runs for `precision` on `device`."""
    check_precision(precision)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and device.type not in ("cpu", "cuda"):
        raise XMemPPError(f"bf16 runs on the CPU or CUDA, not on {device.type}: use --precision fp32")
    return precision


def autocast(device: torch.device, precision: str, use_amp: bool = True) -> contextlib.AbstractContextManager:
    """The autocast context for the network's work at `precision` (`fp32` or `bf16`, as resolved)."""
    import torch

    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "cuda" and use_amp:
        return torch.autocast("cuda")  # the reference's float16 mixed precision
    return contextlib.nullcontext()


@functools.cache
def warn_if_emulated(device_type: str) -> None:
    """Say once per device type that bf16 without hardware support is slower than fp32 (it still runs)."""
    log.warning("this %s has no native bfloat16: bf16 is emulated, correct but slower than fp32 "
                "(use fp32 or auto)", device_type.upper())
