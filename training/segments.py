"""Cutting clips into segments and putting segment predictions back together per clip.

A clip of ``n_points`` samples holds ``n_segments`` contiguous segments of
``n_points // n_segments`` samples, or, with ``chunk_seconds`` (DeepSpectrumLite's chunks), segments of
``int(chunk_seconds x rate)`` samples starting every ``int(chunk_hop_seconds x rate)`` samples, as many as fit
(:func:`segment_geometry`). Training reads either one random crop of segment length
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


def segment_geometry(config: dict, n_points: int, sample_rate: int | None) -> tuple[int, int]:
    """``(length, hop)`` in samples of the segments of a clip of ``n_points`` samples at ``sample_rate`` Hz
    (``None``: generated data): ``chunk_seconds``/``chunk_hop_seconds`` when set (``int(seconds x rate)``,
    DeepSpectrumLite's rounding), else :func:`n_segments` contiguous ones. Raises ``ValueError`` with one line
    for a chunk longer than the clip, a chunk beside ``split_parts``/``segment_seconds``, or a chunk on data
    without a sample rate."""
    chunk, hop_seconds = config.get("chunk_seconds"), config.get("chunk_hop_seconds")
    if chunk is None:
        if hop_seconds is not None:
            raise ValueError(f"chunk_hop_seconds={hop_seconds} needs chunk_seconds")
        length = n_points // n_segments(config)
        return length, length
    if config["split_parts"] != 1 or config["segment_seconds"] is not None:
        raise ValueError("chunk_seconds replaces split_parts and segment_seconds; set only one of them")
    if not sample_rate:
        raise ValueError(f"chunk_seconds={chunk}: {config['dataset_name']} has no sample rate; use split_parts")
    length = int(chunk * sample_rate)
    hop = int((hop_seconds if hop_seconds is not None else chunk) * sample_rate)
    if not 1 <= length <= n_points:
        raise ValueError(f"chunk_seconds={chunk} is {length} samples at {sample_rate} Hz, the clip {n_points}: "
                         "a chunk must fit in the clip (shorten it, or lengthen clip_seconds)")
    if hop < 1:
        raise ValueError(f"chunk_hop_seconds={hop_seconds} is under one sample at {sample_rate} Hz")
    return length, hop


def segments_per_clip(n_points: int, length: int, hop: int | None = None) -> int:
    """How many segments of ``length`` samples, starting every ``hop`` (default ``length``), fit in a clip."""
    return (n_points - length) // (hop or length) + 1


def train_plan(n_clips: int, n_points: int, length: int, mode: str,
               generator: torch.Generator, hop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled ``(clip index, offset in samples)`` pairs of one training epoch (``hop``: see :func:`eval_plan`)."""
    if mode == "random_crop":
        clips = torch.randperm(n_clips, generator=generator)
        if length == n_points:
            return clips, torch.zeros(n_clips, dtype=torch.int64)
        return clips, torch.randint(0, n_points - length + 1, (n_clips,), generator=generator)
    if mode == "all":
        clips, offsets = eval_plan(n_clips, n_points, length, hop)
        order = torch.randperm(len(clips), generator=generator)
        return clips[order], offsets[order]
    raise ValueError(f"unknown train_segments {mode!r}; choose one of {TRAIN_SEGMENTS}")


def eval_plan(n_clips: int, n_points: int, length: int, hop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Every segment of every clip, clip-major: ``(clip index, offset)`` pairs, segments of ``length``
    samples starting every ``hop`` (default ``length``: contiguous) as long as they fit."""
    hop = hop or length
    per_clip = segments_per_clip(n_points, length, hop)
    clips = torch.arange(n_clips).repeat_interleave(per_clip)
    offsets = (torch.arange(per_clip) * hop).repeat(n_clips)
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
