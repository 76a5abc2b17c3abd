"""The embedding cache: every clip of a corpus embedded once per embedder setting, then read by every trial.

A cache file holds the rows of a set of clips, named by the embedder's settings, its code and the clips' content
(a digest of each waveform), so every split, seed and subset size of one corpus reads the same file, and a
changed clip or setting builds a new one. Files live in ``<cache_dir>/embeddings/`` and are written
atomically under a file lock (trials that start together build one file once).
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from transfer.features import EMBEDDERS

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Rows:
    """The embedding rows of one split's clips.

    ``x``: ``(rows, dims)`` float32; ``clip``: ``(rows,)`` the clip (0..n_clips-1, in the split's order) of each
    row; ``y``: ``(n_clips,)`` labels; ``ids``: the clips' identifiers."""

    x: np.ndarray
    clip: np.ndarray
    y: np.ndarray
    ids: list[str]

    def subset(self, index: np.ndarray) -> "Rows":
        """The clips ``index`` only (their rows, renumbered in ``index`` order)."""
        index = np.asarray(index, dtype=np.int64)
        renumber = np.full(len(self.y), -1, dtype=np.int64)
        renumber[index] = np.arange(len(index))
        keep = renumber[self.clip] >= 0
        return Rows(self.x[keep], renumber[self.clip[keep]], self.y[index], [self.ids[i] for i in index])


def digests(waveforms, chunk: int = 256) -> list[str]:
    """A content digest (BLAKE2b, 16 bytes) of each row of ``waveforms`` (``(n, samples)``: a tensor or
    :class:`corpora.splits.Rows`), as float32."""
    out = []
    for start in range(0, len(waveforms), chunk):
        block = np.asarray(waveforms[np.arange(start, min(start + chunk, len(waveforms)))], dtype=np.float32)
        out += [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in block]
    return out


def code_digest(embedder) -> str:
    """A digest of the source of the module ``embedder.embed`` is defined in and of its ``sources``."""
    modules = [inspect.getmodule(embedder.embed), *(importlib.import_module(m) for m in embedder.sources)]
    return hashlib.sha1(b"".join(Path(inspect.getsourcefile(m)).read_bytes() for m in modules)).hexdigest()


def cache_file(cfg: dict, clip_digests: list[str], sample_rate: int) -> Path:
    """Where the rows of these clips under ``cfg``'s embedder settings (and its code) are cached."""
    embedder = EMBEDDERS.get(cfg["embedding"])
    settings = {"embedding": embedder.name, "sample_rate": sample_rate, "code": code_digest(embedder),
                **embedder.settings(cfg)}
    key = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode())
    key.update("".join(sorted(set(clip_digests))).encode())
    root = Path(cfg["cache_dir"]) if cfg["cache_dir"] else PROJECT_ROOT / "cache"
    return root / "embeddings" / f"{embedder.name}-{key.hexdigest()[:20]}.npz"


def embed_all(waveform_of, clip_digests: list[str], sample_rate: int, cfg: dict, path: Path) -> dict:
    """The cache file ``path`` for these clips, built now if absent: ``{"x", "clip", "digests", "seconds"}``
    (``clip`` indexes ``digests``; ``seconds``: the wall time the embedding took when it was built).
    ``waveform_of(digest)``: that clip's ``(samples,)`` float32 waveform."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            embed = EMBEDDERS.get(cfg["embedding"]).embed
            unique = sorted(set(clip_digests))
            start, rows, clip = time.perf_counter(), [], []
            for k, digest in enumerate(tqdm(unique, desc=f"embedding ({cfg['embedding']})", unit="clip",
                                            mininterval=5)):
                r = embed(waveform_of(digest), sample_rate, cfg)
                rows.append(r)
                clip.append(np.full(len(r), k, dtype=np.int64))
            seconds = time.perf_counter() - start
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
            os.close(fd)
            np.savez(tmp, x=np.concatenate(rows).astype(np.float32), clip=np.concatenate(clip),
                     digests=np.array(unique), seconds=np.array(seconds))
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the cache from other users of a shared cache_dir
            os.replace(tmp, path)
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def embedded(labels: np.ndarray, ids: list[str], cached: dict, clip_digests: list[str]) -> Rows:
    """One split's :class:`Rows` from a cache file's content ``cached``."""
    position = {d: i for i, d in enumerate(cached["digests"].tolist())}
    order = np.argsort(cached["clip"], kind="stable")
    bounds = np.searchsorted(cached["clip"][order], np.arange(len(position) + 1))
    xs, clips = [], []
    for k, digest in enumerate(clip_digests):
        p = position[digest]
        rows = order[bounds[p]:bounds[p + 1]]
        xs.append(cached["x"][rows])
        clips.append(np.full(len(rows), k, dtype=np.int64))
    return Rows(np.concatenate(xs), np.concatenate(clips), np.asarray(labels, dtype=np.int64), list(ids))


def embed_splits(splits, cfg: dict) -> tuple[dict[str, Rows], float]:
    """``({"train"|"valid"|"test": Rows}, seconds the cache took to build)`` for a corpus's
    :class:`corpora.splits.Splits`."""
    parts = {name: (getattr(splits, f"x_{name}"), getattr(splits, f"y_{name}").numpy(),
                    getattr(splits, f"ids_{name}") or [str(i) for i in range(len(getattr(splits, f"y_{name}")))])
             for name in ("train", "valid", "test")}
    part_digests = {name: digests(x) for name, (x, _, _) in parts.items()}
    where = {d: (x, i) for name, (x, _, _) in parts.items() for i, d in enumerate(part_digests[name])}
    every = [d for name in parts for d in part_digests[name]]
    path = cache_file(cfg, every, splits.sample_rate)
    cached = embed_all(lambda d: np.asarray(where[d][0][[where[d][1]]], dtype=np.float32)[0], every,
                       splits.sample_rate, cfg, path)
    rows = {name: embedded(y, ids, cached, part_digests[name]) for name, (_, y, ids) in parts.items()}
    return rows, float(cached["seconds"])


# keys that change which head is fitted or on which clips, not the rows of the corpus: configs that differ only
# here read one cache file
HEAD_KEYS = ("classifier", "seed", "split_seed", "train_per_class", "pca_components", "standardize_rows", "C", "gamma",
             "n_neighbors", "mlp_hidden", "deterministic")


def prepare(configs: list[dict]) -> int:
    """Build the embedding cache of every distinct embedding setting of the transfer configs among the resolved
    ``configs`` now, in this process (with a progress bar), so trials only read it; returns how many."""
    from corpora.registry import get_corpus

    seen = set()
    for cfg in configs:
        if cfg["classifier"] is None or cfg["dataset_name"] == "embeddings":
            continue
        key = json.dumps({k: v for k, v in cfg.items() if k not in HEAD_KEYS}, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            embed_splits(get_corpus(cfg["dataset_name"]).load_splits(cfg), cfg)
    return len(seen)
