"""Classify clips as ``training.loop.evaluate`` does, and lay the decisions out as a table.

Each clip is cut into the trial's contiguous segments (:func:`training.segments.eval_plan`), the model sees
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
             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean_logits, votes)`` of ``clips`` ``(n_clips, n_points)``: ``(n_clips, n_classes)`` float32 mean
    segment logits and ``(n_clips,)`` majority-vote classes, on the CPU. ``length``: samples per segment."""
    model.eval()
    index, offsets = eval_plan(len(clips), clips.shape[-1], length)
    parts = []
    for start in range(0, len(index), batch_size):
        batch = slice(start, start + batch_size)
        logits, _ = model(read_segments(clips, index[batch], offsets[batch], length, torch.device(device)))
        parts.append(logits.float())
    return aggregate(torch.cat(parts).cpu(), index, len(clips))


def prediction_rows(files: Sequence[str], mean_logits: torch.Tensor, votes: torch.Tensor, class_names: Sequence[str],
                    top_k: int, with_vote: bool) -> pd.DataFrame:
    """One row per file: ``file``, ``prediction`` (the class of the highest mean logit), ``vote`` (the
    segments' majority vote; only ``with_vote``), then ``top1``, ``top1_prob``, ... ``top<k>``,
    ``top<k>_prob``: the ``top_k`` classes by the softmax of the mean logits, most probable first
    (``top1`` is ``prediction``)."""
    names = np.asarray(class_names, dtype=object)
    probs = torch.softmax(mean_logits.double(), dim=1)
    k = min(top_k, probs.shape[1])
    top_p, top_i = probs.topk(k, dim=1)  # sorted, most probable first
    out = {"file": list(files), "prediction": names[mean_logits.argmax(dim=1).numpy()]}
    if with_vote:
        out["vote"] = names[votes.numpy()]
    for j in range(k):
        out[f"top{j + 1}"] = names[top_i[:, j].numpy()]
        out[f"top{j + 1}_prob"] = top_p[:, j].numpy()
    return pd.DataFrame(out)


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
