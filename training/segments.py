"""Cutting clips into segments and putting segment predictions back together per clip.

A clip of ``n_points`` samples holds ``n_segments`` contiguous segments of
``n_points // n_segments`` samples. Training reads either one random crop of segment length
per clip and epoch (``train_segments="random_crop"``, the Ada-STFT/GTZAN scheme) or every
segment of every clip, shuffled (``"all"``, the FMA scheme). Evaluation always reads every
segment and aggregates per clip, by the clip index each segment carries (never by position
in the loader), with the mean of the logits and with a majority vote.
"""
from __future__ import annotations

import torch

from corpora.splits import Rows

TRAIN_SEGMENTS = ("random_crop", "all")


def n_segments(config: dict) -> int:
    """Segments per clip: ``clip_seconds / segment_seconds`` when ``segment_seconds`` is set, else
    ``split_parts``. Raises ``ValueError`` when the two disagree or do not divide the clip."""
    parts = int(config["split_parts"])
    seconds = config["segment_seconds"]
    if seconds is not None:
        ratio = config["clip_seconds"] / seconds
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise ValueError(f"segment_seconds={seconds} does not divide clip_seconds={config['clip_seconds']}")
        if parts != 1 and parts != round(ratio):
            raise ValueError(f"split_parts={parts} and segment_seconds={seconds} disagree; set only one")
        parts = int(round(ratio))
    if parts < 1:
        raise ValueError(f"split_parts must be at least 1, got {parts}")
    return parts


def train_plan(n_clips: int, n_points: int, length: int, mode: str,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled ``(clip index, offset in samples)`` pairs of one training epoch."""
    if mode == "random_crop":
        clips = torch.randperm(n_clips, generator=generator)
        if length == n_points:
            return clips, torch.zeros(n_clips, dtype=torch.int64)
        return clips, torch.randint(0, n_points - length + 1, (n_clips,), generator=generator)
    if mode == "all":
        clips, offsets = eval_plan(n_clips, n_points, length)
        order = torch.randperm(len(clips), generator=generator)
        return clips[order], offsets[order]
    raise ValueError(f"unknown train_segments {mode!r}; choose one of {TRAIN_SEGMENTS}")


def eval_plan(n_clips: int, n_points: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every contiguous segment of every clip, clip-major: ``(clip index, offset)`` pairs."""
    per_clip = n_points // length
    clips = torch.arange(n_clips).repeat_interleave(per_clip)
    offsets = (torch.arange(per_clip) * length).repeat(n_clips)
    return clips, offsets


def read_segments(x: torch.Tensor | Rows, clips: torch.Tensor, offsets: torch.Tensor, length: int,
                  device: torch.device | None = None) -> torch.Tensor:
    """``(len(clips), length)`` float32 samples: clip ``clips[i]`` from sample ``offsets[i]`` on, on ``device``.

    ``x`` is a ``(n_clips, n_points)`` tensor (sliced where it lives; the result is moved to
    ``device`` if it is elsewhere) or the :class:`Rows` of a decoded-audio cache (read on the host
    into pinned memory when ``device`` is a GPU, then copied without blocking). ``device=None``
    leaves the result where it was read.
    """
    if isinstance(x, Rows):
        cuda = device is not None and torch.device(device).type == "cuda"
        out = x.segments(clips.cpu().numpy(), offsets.cpu().numpy(), length, pin=cuda)
    else:
        clips, offsets = clips.to(x.device), offsets.to(x.device)
        if length == x.shape[-1]:
            out = x[clips]
        else:
            out = x[clips[:, None], offsets[:, None] + torch.arange(length, device=x.device)]
    return out if device is None else out.to(device, non_blocking=True)


def aggregate(logits: torch.Tensor, clips: torch.Tensor, n_clips: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip decisions from segment logits.

    Args:
        logits: ``(n_segments_total, n_classes)``.
        clips: ``(n_segments_total,)`` clip index of each segment, in any order.
        n_clips: number of clips.

    Returns ``(mean_logits, votes)``: ``(n_clips, n_classes)`` mean logits of each clip's segments
    and ``(n_clips,)`` majority-vote classes (ties go to the tied class with the larger summed logit).
    """
    n_classes = logits.shape[1]
    summed = torch.zeros(n_clips, n_classes, dtype=logits.dtype).index_add_(0, clips, logits)
    counts = torch.bincount(clips, minlength=n_clips).clamp_min(1).unsqueeze(1)
    ballots = torch.zeros(n_clips, n_classes, dtype=logits.dtype).index_add_(
        0, clips, torch.nn.functional.one_hot(logits.argmax(1), n_classes).to(logits.dtype))
    top = ballots == ballots.max(dim=1, keepdim=True).values
    votes = torch.where(top, summed, torch.full_like(summed, -torch.inf)).argmax(dim=1)
    return summed / counts, votes
