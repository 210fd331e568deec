"""Tiny generated datasets in DAVIS and YouTube-VOS layouts, from the moving-square clips of conftest."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import moving_square_frames, square_mask, write_frames, write_palette_mask


def write_video(root: Path, name: str, frames: int = 4, annotated: tuple[int, ...] = (0,), seed: int = 0,
                height: int = 96, width: int = 128) -> Path:
    """root/JPEGImages/<name>/ with `frames` JPEGs and root/Annotations/<name>/ with the masks of `annotated`."""
    write_frames(root / "JPEGImages" / name, moving_square_frames(frames, height, width, seed=seed))
    for index in annotated:
        write_palette_mask(root / "Annotations" / name / f"frame_{index:06d}.png", square_mask(index, height, width))
    return root


def write_davis(root: Path, videos: dict[str, int], annotated: tuple[int, ...] | None = (0,)) -> Path:
    """A DAVIS-layout dataset: one moving-square video per name, with that many frames.

    `annotated=None` gives every frame a mask (ground truth for `evaluate`).
    """
    for seed, (name, count) in enumerate(videos.items()):
        write_video(root, name, count, tuple(range(count)) if annotated is None else annotated, seed=seed)
    return root
