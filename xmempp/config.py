"""Inference settings. The defaults are XMem++'s (max810/XMem2, `VIDEO_INFERENCE_CONFIG`)."""

from __future__ import annotations

from dataclasses import dataclass

from xmempp.errors import XMemPPError, whole_number, yes_or_no

MIN_SIZE = 16  # the network downsamples by 16: a smaller short side leaves no feature map
MAX_SIZE = 4320  # an 8K frame's short side: larger only upsamples every video there is, into memory no machine has
# The short side is resized to `size`, so the network's input grows with the long side: a 4x4000 strip at size 64
# is a 64x64000 input, and at 480 a 4x1280 one is 74 megapixels (gigabytes for the first convolution alone).
# No video shape comes near 8:1 (cinema 2.76:1, a 360-degree panorama 2:1).
MAX_ASPECT_RATIO = 8
PRECISIONS = ("fp32", "bf16", "auto")  # what each means: xmempp.precision


def check_precision(precision: str) -> str:
    """`precision` itself, or an XMemPPError naming the choices."""
    if precision not in PRECISIONS:
        raise XMemPPError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


WHOLE_NUMBER_FIELDS = ("mem_every", "top_k", "min_working_frames", "max_working_frames", "num_prototypes",
                       "max_long_term_elements", "key_batch_size")


@dataclass(frozen=True)
class InferenceConfig:
    """How propagation and memory behave. Derive variants with `dataclasses.replace`."""

    size: int | None = 480  # short side of the processed frames; None keeps the original resolution
    mem_every: int = 10  # a propagated frame becomes a working-memory frame every this many frames
    top_k: int = 30  # memory elements each query pixel reads from
    enable_long_term: bool = True  # consolidate old working memory into long-term prototypes
    min_working_frames: int = 5  # working memory kept after a consolidation
    max_working_frames: int = 10  # working memory size that triggers a consolidation
    num_prototypes: int = 128  # long-term prototypes made per consolidation
    max_long_term_elements: int = 10000  # long-term memory cap; least used prototypes are dropped beyond it
    use_amp: bool = True  # float16 mixed precision on CUDA under fp32, as the reference; ignored on CPU
    precision: str = "fp32"  # fp32 (the reference's arithmetic), bf16, or auto: bf16 where the device has it natively
    key_batch_size: int | None = None  # frames per key-encoder pass; None: 8 on CUDA, 1 on the CPU (no gain there)

    def __post_init__(self) -> None:
        if self.size is not None:  # a numpy integer becomes an int: the manifest's JSON takes no numpy types
            object.__setattr__(self, "size", whole_number(self.size, "size"))
        # Checked and kept as ints: a count that passes the range checks as a float (top_k=2.5) or a Fraction
        # failed later inside torch.
        for name in ("enable_long_term", "use_amp"):  # enable_long_term="no" kept it on: any text is true
            object.__setattr__(self, name, yes_or_no(getattr(self, name), name))
        for name in WHOLE_NUMBER_FIELDS:
            if getattr(self, name) is not None or name != "key_batch_size":  # only key_batch_size may be None
                object.__setattr__(self, name, whole_number(getattr(self, name), name))
        if self.size is not None and not MIN_SIZE <= self.size <= MAX_SIZE:
            raise XMemPPError(f"size must be from {MIN_SIZE} to {MAX_SIZE} pixels (or None for the original size), "
                              f"got {self.size}")
        if self.mem_every < 1 or self.top_k < 1:
            raise XMemPPError("mem_every and top_k must be positive")
        # 0 or fewer prototypes, or a long-term memory of 0 or fewer elements, ran without a word into consolidations
        # that keep nothing
        for name in ("num_prototypes", "max_long_term_elements"):
            if getattr(self, name) < 1:
                raise XMemPPError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_prototypes >= self.max_long_term_elements:
            # each consolidation makes room for num_prototypes below the cap: with none left, the first one failed
            # inside the long-term memory (a raw TypeError); the reference has the same arithmetic
            raise XMemPPError(f"num_prototypes ({self.num_prototypes}) must be less than max_long_term_elements "
                              f"({self.max_long_term_elements})")
        if self.key_batch_size is not None and self.key_batch_size < 1:
            raise XMemPPError(f"key_batch_size must be at least 1 (or None), got {self.key_batch_size}")
        check_precision(self.precision)
        if not 0 < self.min_working_frames < self.max_working_frames:
            raise XMemPPError("need 0 < min_working_frames < max_working_frames")

    def counts_long_term_usage(self, num_frames: int) -> bool:
        """Whether long-term usage is tracked: only when a video is long enough to fill long-term memory."""
        consolidations = num_frames / (self.max_working_frames - self.min_working_frames)
        return self.enable_long_term and consolidations * self.num_prototypes >= self.max_long_term_elements
