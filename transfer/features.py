"""Embedders: what turns a clip into embedding rows (one row per patch) for a scikit-learn head.

Each :class:`Embedder` is registered here by name (the ``embedding`` config key). ``mfcc`` and ``logmel`` are
the baselines without pretraining (summary statistics of librosa features per patch); ``musicnn`` reads a
pretrained musicnn model (``embeddings.musicnn``, its weights from ``sh download_data.sh musicnn``);
``torch`` any embedding model the user has saved with ``torch.export`` (``.pt2``) or as TorchScript. Precomputed rows need no embedder:
they are the ``embeddings`` corpus (``corpora/embeddings.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from registry import Registry

EMBEDDERS: Registry["Embedder"] = Registry("embedding", "an embedder registers itself in transfer/features.py")


@dataclass(frozen=True)
class Embedder:
    """One way of embedding clips.

    Attributes:
        name: the ``embedding`` config value.
        embed: ``(waveform (samples,) float32, sample_rate Hz, config) -> (patches, dims) float32``.
        settings: ``config -> dict`` of every value its rows depend on (with the clip's content, the cache key).
        description: one line for the docs.
        problems: ``config -> list[str]``: one line per value it cannot take (an unknown model or layer),
            checked before any trial starts (``tuning/validate.py``).
        missing: ``config -> list[str]``: one line per file it needs that this machine lacks (the weights, the
            model file, with how to get it), checked by ``main.py`` beside the data before any trial starts.
        sources: modules besides the one ``embed`` is defined in whose code decides its rows (their source
            is part of the cache key, so an edited embedder builds a new cache).
    """

    name: str
    embed: Callable[[np.ndarray, int, dict], np.ndarray]
    settings: Callable[[dict], dict]
    description: str
    problems: Callable[[dict], list[str]] | None = None
    missing: Callable[[dict], list[str]] | None = None
    sources: tuple[str, ...] = ()


def register_embedder(embedder: Embedder) -> Embedder:
    return EMBEDDERS.register(embedder.name, embedder)


def patches(waveform: np.ndarray, sample_rate: int, patch_seconds: float | None,
            hop_seconds: float | None = None) -> np.ndarray:
    """``(n, patch samples)``: the clip cut into patches of ``patch_seconds`` every ``hop_seconds``
    (``None``: ``patch_seconds``, no overlap). The tail shorter than a patch is dropped, as the recipe's
    extractors do; a clip shorter than one patch is zero-padded to one. ``patch_seconds=None``: the whole clip."""
    if patch_seconds is None:
        return waveform[None, :]
    size = int(round(patch_seconds * sample_rate))
    hop = int(round((hop_seconds or patch_seconds) * sample_rate))
    if len(waveform) < size:
        waveform = np.pad(waveform, (0, size - len(waveform)))
    starts = range(0, len(waveform) - size + 1, hop)
    return np.stack([waveform[s:s + size] for s in starts])


def stft_sizes(sample_rate: int) -> tuple[int, int]:
    """``(n_fft, hop)`` of the baselines: a 32 ms window rounded to a power of two, a 10 ms hop
    (8 kHz: 256 and 80; 16 kHz: 512 and 160; 22.05 kHz: 1024 and 220)."""
    return 2 ** round(math.log2(0.032 * sample_rate)), int(round(0.010 * sample_rate))


def mean_std(frames: np.ndarray) -> np.ndarray:
    """``(2 * bands,)``: the mean and the standard deviation over time of a ``(bands, frames)`` feature."""
    return np.concatenate([frames.mean(axis=1), frames.std(axis=1)]).astype(np.float32)


def mfcc_stats(waveform: np.ndarray, sample_rate: int, cfg: dict) -> np.ndarray:
    """``(patches, 2 * n_mfcc)``: per patch, the mean and std of ``n_mfcc`` MFCCs (librosa: 40 mel bands,
    :func:`stft_sizes`), the classic MFCC + SVM baseline."""
    import librosa

    n_fft, hop = stft_sizes(sample_rate)
    return np.stack([mean_std(librosa.feature.mfcc(y=p, sr=sample_rate, n_mfcc=cfg["n_mfcc"], n_fft=n_fft,
                                                   hop_length=hop, n_mels=40))
                     for p in patches(waveform, sample_rate, cfg["patch_seconds"], cfg["patch_hop_seconds"])])


def logmel_stats(waveform: np.ndarray, sample_rate: int, cfg: dict) -> np.ndarray:
    """``(patches, 2 * n_mels)``: per patch, the mean and std of a fixed log-mel spectrogram (librosa, Hann
    window, :func:`stft_sizes`, ``n_mels`` bands, ``10 log10(power + 1e-10)``)."""
    import librosa

    n_fft, hop = stft_sizes(sample_rate)
    out = []
    for p in patches(waveform, sample_rate, cfg["patch_seconds"], cfg["patch_hop_seconds"]):
        mel = librosa.feature.melspectrogram(y=p, sr=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=cfg["n_mels"])
        out.append(mean_std(librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)))
    return np.stack(out)


def _baseline_settings(*keys: str) -> Callable[[dict], dict]:
    return lambda cfg: {k: cfg[k] for k in ("patch_seconds", "patch_hop_seconds", *keys)}


register_embedder(Embedder("mfcc", mfcc_stats, _baseline_settings("n_mfcc"),
                           "mean and std of MFCCs per patch (no pretraining)"))
register_embedder(Embedder("logmel", logmel_stats, _baseline_settings("n_mels"),
                           "mean and std of a fixed log-mel spectrogram per patch (no pretraining)"))


_MUSICNN: dict = {}


def _musicnn(cfg: dict):
    """The pretrained musicnn model of ``cfg`` (:func:`embeddings.musicnn.embedding_model`), loaded once per process."""
    from embeddings.musicnn import embedding_model

    key = (cfg["embedding_model"], cfg["embedding_dir"])
    if key not in _MUSICNN:
        _MUSICNN[key] = embedding_model(cfg["embedding_model"], cfg["embedding_dir"])
    return _MUSICNN[key]


def _musicnn_embed(waveform: np.ndarray, sample_rate: int, cfg: dict) -> np.ndarray:
    """Rows of ``embedding_layer`` of a pretrained musicnn model, one per patch of ``patch_seconds`` (``None``:
    its 3 s) every ``patch_hop_seconds``, from the extractor's 16 kHz log-mel input (``embeddings.musicnn``)."""
    model = _musicnn(cfg)
    return model.embed(waveform, sample_rate, cfg["embedding_layer"], patch_seconds=cfg["patch_seconds"] or
                       model.patch_seconds, hop_seconds=cfg["patch_hop_seconds"])


def _musicnn_settings(cfg: dict) -> dict:
    return {"model": cfg["embedding_model"], "layer": cfg["embedding_layer"], "patch": cfg["patch_seconds"],
            "hop": cfg["patch_hop_seconds"]}


def _musicnn_problems(cfg: dict) -> list[str]:
    from embeddings.musicnn import MODEL_NAMES, build, layer_sizes
    from embeddings.musicnn_weights import weights_dir

    name = cfg["embedding_model"]
    if name not in MODEL_NAMES:
        return [f"embedding_model={name!r}: not a musicnn model; choose one of {', '.join(MODEL_NAMES)}"]
    out = []
    layers = layer_sizes(build(name))
    if cfg["embedding_layer"] not in layers:
        out.append(f"embedding_layer={cfg['embedding_layer']!r}: {name} has {', '.join(layers)}")
    if name.endswith("_vgg") and cfg["patch_seconds"] not in (None, 3, 3.0):
        out.append(f"patch_seconds={cfg['patch_seconds']!r}: {name} takes 3 s patches only")
    return out


def _musicnn_missing(cfg: dict) -> list[str]:
    from embeddings.musicnn_weights import weights_dir

    folder = weights_dir(cfg["embedding_dir"]) / cfg["embedding_model"]
    if (folder / ".index").is_file():
        return []
    return [f"no musicnn weights at {folder}: install them with `sh download_data.sh musicnn`"
            + (" (or set embedding_dir)" if cfg["embedding_dir"] is None else "")]


register_embedder(Embedder("musicnn", _musicnn_embed, _musicnn_settings,
                           "a pretrained musicnn model (Pons & Serra; MSD/MTT, musicnn or vgg), any layer",
                           _musicnn_problems, _musicnn_missing, sources=("embeddings.musicnn",)))


def _torch_embed(waveform: np.ndarray, sample_rate: int, cfg: dict) -> np.ndarray:
    """Rows of a saved embedding model (``embedding_model``: its file, :func:`_saved_model`) fed ``(patches, samples)``
    float32 at ``embedding_sample_rate``; it returns ``(patches, dims)``, or a dict of such tensors of
    which ``embedding_layer`` is read."""
    import torch

    rate = cfg["embedding_sample_rate"] or sample_rate
    if rate != sample_rate:
        import soxr

        waveform = soxr.resample(waveform, sample_rate, rate).astype(np.float32)
    model = _saved_model(str(cfg["embedding_model"]))
    with torch.no_grad():
        out = model(torch.from_numpy(patches(waveform, rate, cfg["patch_seconds"], cfg["patch_hop_seconds"])))
    if isinstance(out, dict):
        if cfg["embedding_layer"] not in out:
            raise KeyError(f"{cfg['embedding_model']} gives layers {sorted(out)}, not "
                           f"embedding_layer={cfg['embedding_layer']!r}")
        out = out[cfg["embedding_layer"]]
    return out.reshape(out.shape[0], -1).float().numpy()


_SAVED: dict = {}


def _saved_model(path: str):
    """The model saved at ``path``, loaded once per process on the CPU: a ``torch.export`` program
    (``torch.export.save``, a ``.pt2`` file) or TorchScript (``torch.jit.save``, any other name)."""
    import torch

    if path not in _SAVED:
        if not Path(path).is_file():
            raise FileNotFoundError(f"embedding_model={path!r}: no such file; save your model with "
                                    "torch.export.save(torch.export.export(model, (example,)), 'model.pt2') (docs/transfer.md)")
        if path.endswith(".pt2"):
            _SAVED[path] = torch.export.load(path).module()
        else:
            _SAVED[path] = torch.jit.load(path, map_location="cpu").eval()
    return _SAVED[path]


def _torch_settings(cfg: dict) -> dict:
    path = Path(str(cfg["embedding_model"]))
    stamp = path.stat().st_mtime_ns if path.is_file() else None
    return {"model": str(path), "stamp": stamp, "layer": cfg["embedding_layer"], "rate": cfg["embedding_sample_rate"],
            "patch": cfg["patch_seconds"], "hop": cfg["patch_hop_seconds"]}


def _torch_missing(cfg: dict) -> list[str]:
    if not Path(str(cfg["embedding_model"])).is_file():
        return [f"embedding_model={cfg['embedding_model']!r}: no such file; embedding=torch reads a model saved with "
                "torch.export.save (.pt2) or as TorchScript"]
    return []


register_embedder(Embedder("torch", _torch_embed, _torch_settings,
                           "your own embedding model saved with torch.export (.pt2) or as TorchScript (embedding_model: "
                           "its file)", missing=_torch_missing))


def problems(cfg: dict) -> list[str]:
    """What a transfer trial's config cannot run with (``classifier`` set), one line each."""
    out = []
    gamma = cfg["gamma"]
    if gamma not in ("scale", "auto") and not (isinstance(gamma, (int, float)) and not isinstance(gamma, bool)
                                               and gamma > 0):
        out.append(f"gamma={gamma!r}: must be scale, auto or a positive number")
    if cfg["dataset_name"] == "embeddings":
        return out  # the corpus checks embedding=precomputed itself
    if cfg["embedding"] == "precomputed":
        return out + ["embedding=precomputed reads the rows of the embeddings corpus: set dataset_name=embeddings "
                      "(--data_dir=<folder of .npz files>), or choose an embedder: " + ", ".join(EMBEDDERS.names())]
    record = EMBEDDERS.get(cfg["embedding"])
    return out + (record.problems(cfg) if record.problems else [])


def missing_files(configs: list[dict]) -> list[str]:
    """What the embedders of the transfer configs among the resolved ``configs`` need and this machine lacks,
    one line each (its weights or model file, with how to get it)."""
    out = []
    for cfg in configs:
        if cfg["classifier"] is None or cfg["embedding"] not in EMBEDDERS.names():
            continue
        record = EMBEDDERS.get(cfg["embedding"])
        out += record.missing(cfg) if record.missing else []
    return list(dict.fromkeys(out))
