"""A pretrained PANNs CNN6 (Kong et al., "PANNs", IEEE/ACM TASLP 2020; ``Cnn6_mAP=0.343.pth``,
https://zenodo.org/record/3987831) loaded into :class:`models.classifiers.CNN6Head` (``pretrained``,
``checkpoint_path``), with a report of every tensor by name.

PANNs' ``Cnn6`` (qiuqiangkong/audioset_tagging_cnn, ``pytorch/models.py``) is saved as
``{"model": state_dict, ...}`` (its training script adds ``iteration`` and the data ``sampler``) with
these names, and ours (``CNN6Head``'s, without the ``head.`` of the classifier):

==================================================  ===========================================
PANNs                                               CNN6Head
==================================================  ===========================================
``bn0.*`` (64 mel bins)                             ``bn0.*``
``conv_block{i}.conv1.weight`` (i = 1..4)           ``blocks.{2(i-1)}.0.weight``, transposed
``conv_block{i}.bn1.*``                             ``blocks.{2(i-1)}.1.*``
``fc1.weight``, ``fc1.bias``                        ``fc1.weight``, ``fc1.bias``
``fc_audioset.weight``, ``fc_audioset.bias``        ``out.*`` only with 527 classes; else unused
``spectrogram_extractor.stft.conv_{real,imag}.*``,  unused: our front-end replaces PANNs' fixed
``logmel_extractor.melW``                           STFT and mel filterbank ("front-end")
==================================================  ===========================================

(``blocks`` alternates :class:`~models.classifiers.ConvBlock5x5` ``(conv, bn, relu, pool)`` and dropout.)
PANNs' image is ``(batch, 1, time, mel)``, ours ``(batch, 1, freq, frames)``: each 5x5 kernel's two axes
are swapped on load (a square kernel's shape cannot tell; the test's functional forward of PANNs checks
it). Nothing else differs: 'same' padding, 2x2 average pooling, the mean over frequency and the max plus
mean over time are symmetric in the two axes.

What fits: the tensors' shapes, ``bn0``'s mel count above all (PANNs: 64), and the sample rate. The
checkpoint does not record its rate, so ``checkpoint_sample_rate`` says it (default 32000, PANNs' rate;
``None``: unknown, not checked). A trial at another ``sample_rate`` is refused unless
``checkpoint_rate_check=False``: the same mel bins at another rate cover other frequencies, so the
pretrained filters (and ``bn0``'s running statistics) would meet another input distribution. Data without
a rate (the synthetic corpus) is not checked. Window, hop and log scale (PANNs: 1024, 320, dB of power,
50 Hz to 14 kHz) are not checked; see docs/configuration.md.
"""
from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from models.classifiers import CNN6Head, Classifier, frontend_feature

FRONTEND_PREFIXES = ("spectrogram_extractor.", "logmel_extractor.")  # PANNs' fixed STFT and mel filterbank
DOWNLOAD = "https://zenodo.org/record/3987831/files/Cnn6_mAP%3D0.343.pth"
_BLOCK = re.compile(r"conv_block([1-9])\.(conv1|bn1)\.(\w+)")


def head_name(name: str) -> str | None:
    """``CNN6Head``'s name for the PANNs tensor ``name`` (``out.*`` for ``fc_audioset.*``), or ``None``
    where CNN6Head has no place for it (PANNs' front-end, another architecture's layers)."""
    if name.startswith(("bn0.", "fc1.")):
        return name
    if name.startswith("fc_audioset."):
        return "out." + name.removeprefix("fc_audioset.")
    block = _BLOCK.fullmatch(name)
    if block is None:
        return None
    index, layer, rest = block.groups()
    return f"blocks.{2 * (int(index) - 1)}.{0 if layer == 'conv1' else 1}.{rest}"


def to_head_layout(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """PANNs' tensor ``name`` as CNN6Head holds it: a convolution weight ``(out, in, time, mel)`` becomes
    ``(out, in, freq, time)``; everything else is unchanged."""
    return tensor.transpose(-1, -2).contiguous() if name.endswith("conv1.weight") else tensor


@dataclass(frozen=True)
class KeyReport:
    """What a load did with each tensor, by name.

    Attributes:
        checkpoint: the file's path.
        loaded: PANNs name -> CNN6Head name, each tensor copied (convolutions transposed).
        missing: CNN6Head names the checkpoint has nothing for: kept at their initialisation.
        unexpected: PANNs name -> why it is not used (``"front-end"``: our front-end replaces it).
    """

    checkpoint: str
    loaded: dict[str, str]
    missing: tuple[str, ...]
    unexpected: dict[str, str]

    def counts(self) -> dict[str, int]:
        """``pretrained_loaded``, ``pretrained_missing``, ``pretrained_unexpected``: the trial's metrics."""
        return {f"pretrained_{group}": len(getattr(self, group)) for group in ("loaded", "missing", "unexpected")}

    def as_dict(self) -> dict:
        """JSON-ready (``pretrained_keys.json``; :meth:`from_dict` reads it back)."""
        return {"checkpoint": self.checkpoint, "loaded": dict(self.loaded), "missing": list(self.missing),
                "unexpected": dict(self.unexpected)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "KeyReport":
        return cls(data["checkpoint"], dict(data["loaded"]), tuple(data["missing"]), dict(data["unexpected"]))

    def text(self) -> str:
        """The report for the trial log: a count line, then one line per group; a loaded tensor shows its
        new name where it has one, unused tensors are grouped by why."""
        loaded = [theirs if ours == theirs else f"{theirs} -> {ours}" for theirs, ours in self.loaded.items()]
        why: dict[str, list[str]] = {}
        for name, reason in self.unexpected.items():
            why.setdefault(reason, []).append(name)
        return "\n".join([
            f"pretrained cnn6 from {self.checkpoint}: {len(self.loaded)} tensors loaded, {len(self.missing)} missing "
            f"(kept at init), {len(self.unexpected)} unexpected (not used)",
            f"  loaded (each 5x5 kernel transposed: PANNs' time x mel is our freq x time): {', '.join(loaded)}",
            f"  missing, kept at init: {', '.join(self.missing) or '-'}",
            *(f"  not used ({reason}): {', '.join(names)}" for reason, names in why.items())])


def match_keys(checkpoint: Mapping[str, torch.Tensor], head: Mapping[str, torch.Tensor],
               path: str = "") -> tuple[dict[str, torch.Tensor], KeyReport, list[str]]:
    """Pair PANNs' tensors with the head's.

    Args:
        checkpoint: PANNs' state dict (name -> tensor).
        head: the head's state dict, ``CNN6Head``'s names (only its shapes are read).
        path: the checkpoint's path, for the report.
    Returns:
        ``(tensors, report, misfits)``: the head's tensors to load (its names, its layout), the
        :class:`KeyReport`, and one phrase per tensor whose shape does not fit (``bn0``'s as the mel count);
        the output layer of another class count is no misfit but unused (its ``out`` stays at init).
    """
    tensors, loaded, unexpected, misfits = {}, {}, {}, []
    for name, tensor in checkpoint.items():
        ours = head_name(name)
        if name.startswith(FRONTEND_PREFIXES):
            unexpected[name] = "front-end"
        elif ours is None or ours not in head:
            unexpected[name] = "not a layer of CNN6Head"
        elif (mine := to_head_layout(name, tensor)).shape == head[ours].shape:
            tensors[ours], loaded[name] = mine, ours
        elif name.startswith("fc_audioset."):
            unexpected[name] = f"{tensor.shape[0]} classes in the checkpoint vs {head[ours].shape[0]} here"
        elif name.startswith("bn0."):  # one vector per mel bin: said once, as the mel count
            mels = (f"mel bins: checkpoint {tensor.shape[0]} (bn0) vs {head[ours].shape[0]} from this front-end "
                    f"(a mel front-end with n_mels={tensor.shape[0]} fits)")
            misfits += [mels] if mels not in misfits else []
        else:
            misfits.append(f"{name} {tuple(tensor.shape)} vs {ours} {tuple(head[ours].shape)}")
    missing = tuple(name for name in head if name not in tensors)
    return tensors, KeyReport(str(path), loaded, missing, unexpected), misfits


def rate_misfit(checkpoint_rate: int | None, sample_rate: int | None) -> str | None:
    """The phrase for a checkpoint trained at ``checkpoint_rate`` Hz used at ``sample_rate`` Hz, or
    ``None`` when they agree or either is unknown."""
    if checkpoint_rate is None or sample_rate is None or checkpoint_rate == sample_rate:
        return None
    return (f"sample rate: checkpoint {checkpoint_rate} Hz vs sample_rate={sample_rate} Hz (set "
            f"sample_rate={checkpoint_rate}, or checkpoint_rate_check=False to fine-tune at {sample_rate} Hz)")


def read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """The state dict of PANNs' checkpoint file ``path`` (its ``model`` entry, or the file itself when it
    is a plain state dict), on the CPU. A missing or unreadable file raises ``ValueError``, one line
    naming the path and the fix. PANNs' released files also pickle their data sampler's NumPy state,
    which ``weights_only`` loading refuses, so the file is unpickled in full: load only files you trust."""
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint_path={path}: no such file; download PANNs' CNN6 ({DOWNLOAD}) there, "
                         "or set checkpoint_path to where it is")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated download, an HTML page saved as .pth, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"checkpoint_path={path}: cannot be read by torch.load ({type(err).__name__}: {first}); "
                         f"download it again ({DOWNLOAD})") from None
    state = saved.get("model", saved) if isinstance(saved, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"checkpoint_path={path}: holds no state dict (PANNs' files hold one under 'model'); "
                         "give a PANNs Cnn6 checkpoint")
    return dict(state)


def load_pretrained(model: Classifier, config: Mapping, sample_rate: int | None) -> KeyReport:
    """Load ``config["checkpoint_path"]`` into ``model.head`` (a ``CNN6Head``); return the
    :class:`KeyReport`. Refused with one ``ValueError`` line (nothing loaded): another head, no path, a
    missing file, or a checkpoint that does not fit (shapes, and ``checkpoint_sample_rate`` against
    ``sample_rate`` unless ``checkpoint_rate_check`` is off)."""
    problem = _settings_problem(config)
    if problem:
        raise ValueError(problem)
    path = config["checkpoint_path"]
    head = model.head.state_dict()
    tensors, report, misfits = match_keys(read_checkpoint(path), head, path)
    misfits += _rate_misfits(config, sample_rate)
    if misfits:
        raise ValueError(f"checkpoint_path={path} does not fit this cnn6: {'; '.join(misfits)}")
    model.head.load_state_dict({**head, **tensors})
    return report


def config_problems(config: Mapping, sample_rate: int | None) -> list[str]:
    """What :func:`load_pretrained` would refuse, checked before any trial starts (``tuning/validate.py``):
    the settings, the file (read once per path), and its fit where the config says the band count (a
    ``mel`` feature: ``n_mels``; a spectrogram's bins are checked when the trial builds its model)."""
    if not config["pretrained"]:
        return []
    problem = _settings_problem(config)
    if problem:
        return [problem]
    path = config["checkpoint_path"]
    try:
        checkpoint = _read_once(path, os.path.getmtime(path) if os.path.isfile(path) else None)
    except ValueError as err:
        return [str(err)]
    misfits = _rate_misfits(config, sample_rate)
    try:
        feature = frontend_feature(dict(config))
    except ValueError as err:  # a feature the front-end cannot give
        return [str(err)]
    if feature == "mel":
        misfits = match_keys(checkpoint, _head_shapes(config["n_mels"]), path)[2] + misfits
    return [f"checkpoint_path={path} does not fit this cnn6: {'; '.join(misfits)}"] if misfits else []


def _settings_problem(config: Mapping) -> str | None:
    if config["model_name"] != "cnn6":
        return (f"pretrained=True: model_name={config['model_name']!r} has no pretrained checkpoint here; "
                "use model_name='cnn6' (PANNs CNN6) or pretrained=False")
    if not config["checkpoint_path"] or not isinstance(config["checkpoint_path"], str):
        return f"pretrained=True needs checkpoint_path: the path of PANNs' Cnn6_mAP=0.343.pth ({DOWNLOAD})"
    return None


def _rate_misfits(config: Mapping, sample_rate: int | None) -> list[str]:
    misfit = rate_misfit(config["checkpoint_sample_rate"], sample_rate) if config["checkpoint_rate_check"] else None
    return [misfit] if misfit else []


@functools.lru_cache(maxsize=4)
def _read_once(path: str, mtime: float | None) -> dict[str, torch.Tensor]:
    """:func:`read_checkpoint`, once per file version for a grid's many configs."""
    return read_checkpoint(path)


@functools.lru_cache(maxsize=8)
def _head_shapes(n_bands: int) -> dict[str, torch.Tensor]:
    """CNN6Head's state dict for ``n_bands`` input bands as shapes only (meta tensors, no memory); the class
    count only sizes ``out``, which never misfits."""
    with torch.device("meta"):
        return CNN6Head((n_bands, 16), 1).state_dict()
