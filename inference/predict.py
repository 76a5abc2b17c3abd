"""Classify clips as ``training.loop.evaluate`` does, and lay the decisions out as a table.

Each clip is cut into the trial's segments (:func:`training.segments.eval_plan`), the model sees
them in batches of the trial's ``batch_size`` in eval mode, and each clip's segment logits are put back
together by :func:`training.segments.aggregate`: the mean of the logits (the ``prediction``) and the
segments' majority vote (``vote``, where a clip has more than one segment).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

import numpy as np
import pandas as pd
import torch

from training.segments import aggregate, eval_plan, read_segments


@torch.no_grad()
def classify(model: torch.nn.Module, clips: torch.Tensor, length: int, batch_size: int,
             device: torch.device | str = "cpu", hop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean_logits, votes)`` of ``clips`` ``(n_clips, n_points)``: ``(n_clips, n_classes)`` float32 mean
    segment logits and ``(n_clips,)`` majority-vote classes, on the CPU. ``length``: samples per segment,
    ``hop``: between segment starts (default ``length``)."""
    model.eval()
    index, offsets = eval_plan(len(clips), clips.shape[-1], length, hop)
    parts = []
    for start in range(0, len(index), batch_size):
        batch = slice(start, start + batch_size)
        logits, _ = model(read_segments(clips, index[batch], offsets[batch], length, torch.device(device)))
        parts.append(logits.float())
    return aggregate(torch.cat(parts).cpu(), index, len(clips))


def prediction_rows(files: Sequence[str], probs: np.ndarray, votes: np.ndarray, class_names: Sequence[str],
                    top_k: int, with_vote: bool) -> pd.DataFrame:
    """One row per file: ``file``, ``prediction`` (the most probable class), ``vote`` (the segments' or patches'
    majority vote; only ``with_vote``), then ``top1``, ``top1_prob``, ... ``top<k>``, ``top<k>_prob``: the
    ``top_k`` classes by ``probs`` ``(n_files, n_classes)`` (a neural trial's: the softmax of the mean segment
    logits; a transfer trial's: the mean of its patches' probabilities), most probable first (``top1`` is
    ``prediction``)."""
    names = np.asarray(class_names, dtype=object)
    probs = np.asarray(probs, dtype=np.float64)
    k = min(top_k, probs.shape[1])
    top_i = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    out = {"file": list(files), "prediction": names[probs.argmax(axis=1)]}
    if with_vote:
        out["vote"] = names[np.asarray(votes)]
    for j in range(k):
        out[f"top{j + 1}"] = names[top_i[:, j]]
        out[f"top{j + 1}_prob"] = np.take_along_axis(probs, top_i[:, j:j + 1], axis=1)[:, 0]
    return pd.DataFrame(out)


def classify_embedded(pipeline, embed, clips: np.ndarray, sample_rate: int, n_classes: int
                      ) -> tuple[np.ndarray, np.ndarray, int]:
    """A transfer trial's decisions on ``clips`` ``(n_clips, n_points)``: ``(mean probabilities (n_clips,
    n_classes), votes (n_clips,), most patches of a clip)``, as :func:`transfer.trial.score` decides.
    ``embed``: ``(waveform, sample_rate) -> (patches, dims)``, the trial's embedder."""
    from transfer.heads import class_scores, clip_decisions

    rows = [embed(np.asarray(c, dtype=np.float32), sample_rate) for c in clips]
    x, clip = np.concatenate(rows), np.concatenate([np.full(len(r), k) for k, r in enumerate(rows)])
    vote, _, mean = clip_decisions(pipeline.predict(x).astype(np.int64), class_scores(pipeline, x, n_classes), clip,
                                   len(clips))
    return mean, vote, max(len(r) for r in rows)


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
