"""musicnn (Pons & Serra, 2019, https://github.com/jordipons/musicnn, ISC licence) in PyTorch, read from the
original TF-1 checkpoints of the ``musicnn==0.1.0`` wheel (``sh download_data.sh musicnn``).

Four models tag music with 50 tags: ``MTT_musicnn`` and ``MSD_musicnn`` (the musically motivated CNN, trained
on MagnaTagATune and the Million Song Dataset), ``MTT_vgg`` and ``MSD_vgg`` (a VGG-like baseline). They read
3 s patches of a log-mel spectrogram (:func:`musicnn_input`: 16 kHz, 512-point FFT, 256-sample hop, 96 mel
bands) as ``(batch, frames, mels)``; :func:`embed` turns a waveform into one row per patch of one layer.

The port follows the wheel's ``models.py`` op for op, TF's conventions included: each conv is followed by
its ReLU and then batch norm (epsilon 0.001, moving statistics), "same" padding puts the odd pixel after
(an even kernel of k taps pads ``k // 2 - 1`` before, ``k // 2`` after), pooling is "valid", and flattening
is in TF's ``(time, frequency, channel)`` order. ``tests/test_musicnn.py`` checks it against the original
graph run by TF (``tools/musicnn_reference.py``).

    model = load_musicnn("MSD_musicnn")                          # weights from data/musicnn (MUSICNN_DIR)
    rows = embed(model, waveform, 22050, "max_pool")             # (patches, 753) float32
"""
from __future__ import annotations

import math
from collections import Counter
from functools import partial
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embeddings.base import EmbeddingModel
from embeddings.musicnn_weights import MODEL_NAMES, weights_dir
from embeddings.tf_bundle import read_checkpoint

SAMPLE_RATE, N_FFT, HOP, N_MELS = 16000, 512, 256, 96  # the wheel's configuration.py
N_CLASSES = 50
PATCH_SECONDS = 3.0  # what the models were trained on (187 frames)
TF_BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default (PyTorch's is 1e-5)
FLOAT16_MAX = float(np.finfo(np.float16).max)


def tf_same_padding(kernel: int) -> tuple[int, int]:
    """``(before, after)`` padding of TF's "same" at stride 1: the odd one goes after."""
    return (kernel - 1) // 2, kernel // 2


def valid_pooled(size: int, window: int, stride: int) -> int:
    """Output length of TF's "valid" pooling of ``size`` steps."""
    return (size - window) // stride + 1


def bn(channels: int, image: bool = False) -> nn.BatchNorm1d | nn.BatchNorm2d:
    """A batch norm with TF's epsilon over dimension 1 of ``(batch, channels[, length])`` or, ``image``,
    ``(batch, channels, height, width)``."""
    return (nn.BatchNorm2d if image else nn.BatchNorm1d)(channels, eps=TF_BN_EPSILON)


class ConvReluBN(nn.Module):
    """``bn(relu(conv(x)))``: a ``tf.compat.v1.layers.conv2d`` with ``activation=relu`` then its batch norm."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d):
        super().__init__()
        self.conv, self.bn = conv, bn(conv.out_channels, image=isinstance(conv, nn.Conv2d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


def _freq_max(x: torch.Tensor) -> torch.Tensor:
    """``(batch, channels, frames, bands) -> (batch, channels, frames)``: max over the bands (TF's
    ``max_pooling2d`` over the whole frequency axis, then squeezed)."""
    return x.amax(dim=3)


class Musicnn(nn.Module):
    """The musically motivated CNN (the wheel's ``build_musicnn``).

    Front-end on the batch-normalized log-mel: two timbral convs (7 frames x 40 % and 70 % of the bands,
    ``int(1.6 * 128)`` = 204 filters) and three temporal ones (128, 64 and 32 frames x 1 band, ``int(1.6 *
    32)`` = 51 filters), each max-pooled over frequency: 561 features per frame. Mid-end: three 7-frame
    convs of ``midend_filters`` (64) over the features, the last two residual; with the front-end, 753
    features per frame. Back-end: max and mean over time (interleaved per feature, as TF flattens them),
    batch norm, a dense ReLU layer of ``backend_units`` (200) with batch norm (the ``penultimate`` layer),
    and ``n_classes`` sigmoid outputs (the ``taggram``). Any number of frames >= 1 works.

    The widths are parameters so that a small random checkpoint of the same graph can test the port.
    """

    def __init__(self, n_mels: int = N_MELS, frontend_scale: float = 1.6, midend_filters: int = 64,
                 backend_units: int = 200, n_classes: int = N_CLASSES):
        super().__init__()
        timbral, temporal = int(frontend_scale * 128), int(frontend_scale * 32)
        self.input_bn = bn(1, image=True)
        # int(0.4 * 96) = 38, int(0.7 * 96) = 67 bands, as the wheel computes them
        self.timbral = nn.ModuleList(ConvReluBN(nn.Conv2d(1, timbral, (7, int(share * n_mels))))
                                     for share in (0.4, 0.7))
        self.temporal = nn.ModuleList(ConvReluBN(nn.Conv2d(1, temporal, (frames, 1))) for frames in (128, 64, 32))
        front = 2 * timbral + 3 * temporal
        # TF convolves (frames, features) images of one channel with kernels as wide as the features: a 1-d
        # conv over time with the features as channels
        self.midend = nn.ModuleList(ConvReluBN(nn.Conv1d(size, midend_filters, 7))
                                    for size in (front, midend_filters, midend_filters))
        self.n_features = front + 3 * midend_filters
        self.pool_bn = bn(2 * self.n_features)
        self.dense = nn.Linear(2 * self.n_features, backend_units)
        self.dense_bn = bn(backend_units)
        self.output = nn.Linear(backend_units, n_classes)
        self.n_frames = None  # any patch length

    def tf_layers(self) -> list[tuple[str, str]]:
        """``(submodule name, TF default layer name)`` of each layer in the order the wheel creates them."""
        blocks = [f"timbral.{i}" for i in range(2)] + [f"temporal.{i}" for i in range(3)] + \
                 [f"midend.{i}" for i in range(3)]
        return ([("input_bn", "batch_normalization")]
                + [pair for b in blocks for pair in ((f"{b}.conv", "conv2d"), (f"{b}.bn", "batch_normalization"))]
                + [("pool_bn", "batch_normalization"), ("dense", "dense"), ("dense_bn", "batch_normalization"),
                   ("output", "dense")])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: ``(batch, frames, mels)`` log-mel patches. Returns the extractor's layers: ``taggram``
        ``(batch, classes)`` in [0, 1], ``penultimate`` ``(batch, units)``, ``mean_pool`` and ``max_pool``
        ``(batch, 753)``, and per frame ``timbral`` ``(batch, frames, 408)``, ``temporal`` ``(batch, frames,
        153)``, ``cnn1``..``cnn3`` ``(batch, frames, 64)`` (the default widths)."""
        image = self.input_bn(x[:, None])  # (batch, 1, frames, mels)
        padded = F.pad(image, (0, 0, 3, 3))  # time only: the wheel's cheap "same" for 7 frames
        timbral = [_freq_max(block(padded)) for block in self.timbral]  # (batch, 204, frames) each
        temporal = [_freq_max(block(F.pad(image, (0, 0, *tf_same_padding(block.conv.kernel_size[0])))))
                    for block in self.temporal]  # (batch, 51, frames) each
        front = torch.cat(timbral + temporal, dim=1)  # (batch, 561, frames)
        cnn1 = self.midend[0](F.pad(front, (3, 3)))
        cnn2 = self.midend[1](F.pad(cnn1, (3, 3))) + cnn1
        cnn3 = self.midend[2](F.pad(cnn2, (3, 3))) + cnn2
        features = torch.cat([front, cnn1, cnn2, cnn3], dim=1)  # (batch, 753, frames)
        max_pool, mean_pool = features.amax(dim=2), features.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF: concat on a last axis, flatten
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return {"taggram": torch.sigmoid(self.output(penultimate)), "penultimate": penultimate,
                "mean_pool": mean_pool, "max_pool": max_pool,
                "timbral": torch.cat(timbral, dim=1).transpose(1, 2),
                "temporal": torch.cat(temporal, dim=1).transpose(1, 2),
                "cnn1": cnn1.transpose(1, 2), "cnn2": cnn2.transpose(1, 2), "cnn3": cnn3.transpose(1, 2)}


class MusicnnVGG(nn.Module):
    """The VGG-like baseline (the wheel's ``vgg``): batch norm of the input, then five blocks of a 3x3
    "same" conv of ``filters`` (128), ReLU, batch norm and a max-pool (4x1 stride 2x2, three of 2x2, then
    4x4), flattened (``pool5``: 256 for a 187 x 96 patch) into ``n_classes`` sigmoid outputs. The dense
    layer fixes the patch: ``n_frames`` x ``n_mels`` (3 s)."""

    POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

    def __init__(self, filters: int = 128, n_classes: int = N_CLASSES, n_frames: int = 187, n_mels: int = N_MELS):
        super().__init__()
        self.input_bn = bn(1, image=True)
        self.blocks = nn.ModuleList(ConvReluBN(nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1))
                                    for i in range(5))
        frames, bands = n_frames, n_mels
        for (window_t, window_f), (stride_t, stride_f) in self.POOLS:
            frames, bands = valid_pooled(frames, window_t, stride_t), valid_pooled(bands, window_f, stride_f)
        if frames < 1 or bands < 1:
            raise ValueError(f"a {n_frames} x {n_mels} patch is too small for the vgg's five poolings")
        self.output = nn.Linear(frames * bands * filters, n_classes)
        self.n_frames = n_frames

    def tf_layers(self) -> list[tuple[str, str]]:
        """``(submodule name, TF layer name)`` in the wheel's order: its convs are named 1CNN..5CNN."""
        return ([("input_bn", "batch_normalization")]
                + [pair for i in range(5) for pair in ((f"blocks.{i}.conv", f"{i + 1}CNN"),
                                                       (f"blocks.{i}.bn", "batch_normalization"))]
                + [("output", "dense")])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: ``(batch, n_frames, n_mels)``. Returns ``taggram`` ``(batch, classes)``, ``pool1``..``pool4``
        ``(batch, frames, bands, filters)`` (TF's layout) and ``pool5`` flattened in that order ``(batch, 256)``."""
        h = self.input_bn(x[:, None])
        out = {}
        for i, (block, (window, stride)) in enumerate(zip(self.blocks, self.POOLS), start=1):
            h = F.max_pool2d(block(h), window, stride)
            out[f"pool{i}"] = h.permute(0, 2, 3, 1)
        out["pool5"] = out["pool5"].flatten(1)
        out["taggram"] = torch.sigmoid(self.output(out["pool5"]))
        return out


def _tf_scopes(module: Musicnn | MusicnnVGG) -> list[tuple[str, str]]:
    """``(submodule name, TF variable scope)``: TF numbers a default layer name by creation order
    (``conv2d``, ``conv2d_1``, ...); an explicit name (``1CNN``) is used once, unnumbered."""
    seen: Counter[str] = Counter()
    out = []
    for name, tf_name in module.tf_layers():
        out.append((name, tf_name if seen[tf_name] == 0 else f"{tf_name}_{seen[tf_name]}"))
        seen[tf_name] += 1
    return out


def _converted(layer: nn.Module, variable: str, value: np.ndarray) -> np.ndarray:
    """A TF variable in the layout of the matching PyTorch parameter of ``layer``."""
    if variable.endswith("/kernel"):
        if isinstance(layer, nn.Linear):
            return value.T  # (in, out) -> (out, in)
        if isinstance(layer, nn.Conv1d):
            return value[:, :, 0, :].transpose(2, 1, 0)  # (taps, features, 1, out) -> (out, features, taps)
        return value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    return value


# PyTorch's name of each TF variable of a layer
BN_VARIABLES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
WEIGHT_VARIABLES = {"kernel": "weight", "bias": "bias"}
OPTIMIZER_STATE = ("/Adam", "/Adam_1", "beta1_power", "beta2_power", "global_step")


def tf_state_dict(module: Musicnn | MusicnnVGG, variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """``module``'s state dict from the TF checkpoint ``variables`` (:func:`embeddings.tf_bundle.read_checkpoint`).

    Kernels are transposed (conv HWIO -> OIHW, dense ``(in, out)`` -> ``(out, in)``); the optimizer's state
    (Adam slots, beta powers, global step) is ignored. Raises ``ValueError`` (one line) naming the missing
    and unexpected variables, or a variable whose shape is not the port's.
    """
    own = module.state_dict()
    state = {k: v for k, v in own.items() if k.endswith("num_batches_tracked")}  # PyTorch only; unused in eval
    wanted = {}
    for name, scope in _tf_scopes(module):
        layer = module.get_submodule(name)
        names = BN_VARIABLES if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)) else WEIGHT_VARIABLES
        wanted.update({f"{scope}/{tf}": (layer, f"{name}.{torch_name}") for tf, torch_name in names.items()})
    model_vars = {k for k in variables if not any(mark in k for mark in OPTIMIZER_STATE)}
    missing, unexpected = sorted(set(wanted) - model_vars), sorted(model_vars - set(wanted))
    if missing or unexpected:
        raise ValueError(f"the checkpoint is not a {type(module).__name__} of these sizes: missing "
                         f"{', '.join(missing) or 'none'}; unexpected {', '.join(unexpected) or 'none'}")
    for variable, (layer, key) in wanted.items():
        value = _converted(layer, variable, variables[variable])
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(f"{variable} of shape {variables[variable].shape} does not fit {key} "
                             f"{tuple(own[key].shape)}: the checkpoint is not a model of these sizes")
        state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return state


def build(name: str) -> Musicnn | MusicnnVGG:
    """The untrained module of the wheel's model ``name`` (one of :data:`MODEL_NAMES`)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown musicnn model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return MusicnnVGG() if name.endswith("_vgg") else Musicnn()


def load_musicnn(name: str, weights: str | Path | None = None) -> Musicnn | MusicnnVGG:
    """The pretrained model ``name`` (``MTT_musicnn``, ``MSD_musicnn``, ``MTT_vgg``, ``MSD_vgg``) on the CPU
    in eval mode, read from ``<weights>/<name>/`` (``weights`` None: ``MUSICNN_DIR`` or ``data/musicnn``).
    ``FileNotFoundError`` says how to install the weights when they are absent."""
    module = build(name)
    folder = weights_dir(weights) / name
    if not (folder / ".index").is_file():
        raise FileNotFoundError(f"no musicnn weights at {folder}: install them with `sh download_data.sh musicnn` "
                                f"(into data/musicnn; MUSICNN_DIR=<folder> for another place)")
    module.load_state_dict(tf_state_dict(module, read_checkpoint(folder)))
    return module.eval()


def _mono_at_model_rate(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(samples,)`` float32 at 16 kHz: channels ``(channels, samples)`` averaged, other rates resampled
    with soxr's high quality, as ``librosa.load(path, sr=16000)`` does in the extractor."""
    y = librosa.to_mono(np.asarray(waveform, dtype=np.float32))
    if sample_rate != SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    return y.astype(np.float32, copy=False)


def log_mel(y: np.ndarray, saturate: bool = True) -> np.ndarray:
    """``(frames, 96)`` float32: the extractor's input of a 16 kHz waveform, ``log10(10000 mel + 1)`` of a
    librosa power mel spectrogram (frames centred, every 256 samples) computed in float16 as the extractor
    does. The float16 product overflows above a mel power of 6.55 (a tone of amplitude ~0.12 gets there),
    which makes the extractor's input inf and the network's outputs NaN; ``saturate`` (default) keeps it at
    float16's maximum instead (log 4.816, just above what finite inputs reach); ``False`` reproduces the inf."""
    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS).T
    with np.errstate(over="ignore"):
        scaled = 10000 * mel.astype(np.float16)  # float16, as in the extractor
    if saturate:
        scaled = np.minimum(scaled, np.float16(FLOAT16_MAX))
    return np.log10(scaled + 1).astype(np.float32)


def musicnn_input(waveform: np.ndarray, sample_rate: int, saturate: bool = True) -> np.ndarray:
    """``(frames, 96)`` float32: the log-mel spectrogram the extractor feeds the models (:func:`log_mel`) of
    ``waveform`` (``(samples,)`` or ``(channels, samples)`` at ``sample_rate`` Hz; resampled to 16 kHz)."""
    return log_mel(_mono_at_model_rate(waveform, sample_rate), saturate)


def patch_frames(patch_seconds: float = PATCH_SECONDS) -> int:
    """Frames in a patch of ``patch_seconds``: ``librosa.time_to_frames + 1`` as the extractor counts (3 s: 187)."""
    return int(librosa.time_to_frames(patch_seconds, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP)) + 1


def hop_frames(hop_seconds: float | None, patch_seconds: float = PATCH_SECONDS) -> int:
    """Frames between patch starts: the extractor's ``librosa.time_to_frames(hop_seconds)`` (what it calls
    ``input_overlap``); ``None``: a whole patch, no overlap."""
    hop = patch_frames(patch_seconds) if hop_seconds is None else \
        int(librosa.time_to_frames(hop_seconds, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP))
    if hop < 1:
        raise ValueError(f"hop_seconds={hop_seconds} is under one frame ({N_FFT // 2 + HOP} samples at 16 kHz)")
    return hop


def cut_patches(spectrogram: np.ndarray, n_frames: int, hop: int) -> np.ndarray:
    """``(patches, n_frames, bands)``: the patches starting every ``hop`` frames that fit in the
    ``(frames, bands)`` spectrogram (the extractor's ``batch_data``; the tail shorter than a patch is dropped)."""
    starts = range(0, spectrogram.shape[0] - n_frames + 1, hop)
    return np.stack([spectrogram[s:s + n_frames] for s in starts]) if len(starts) else \
        np.zeros((0, n_frames, spectrogram.shape[1]), dtype=spectrogram.dtype)


def musicnn_patches(waveform: np.ndarray, sample_rate: int, patch_seconds: float = PATCH_SECONDS,
                    hop_seconds: float | None = None, saturate: bool = True) -> np.ndarray:
    """``(patches, frames, 96)`` float32: the extractor's input patches of ``waveform``. A clip shorter
    than one patch is zero-padded at its end (at 16 kHz) to make one patch, where the extractor fails."""
    n_frames = patch_frames(patch_seconds)
    y = _mono_at_model_rate(waveform, sample_rate)
    needed = (n_frames - 1) * HOP  # centred framing gives 1 + samples // HOP frames
    if len(y) < needed:
        y = np.pad(y, (0, needed - len(y)))
    return cut_patches(log_mel(y, saturate), n_frames, hop_frames(hop_seconds, patch_seconds))


def embed(module: Musicnn | MusicnnVGG, waveform: np.ndarray, sample_rate: int, layer: str,
          patch_seconds: float = PATCH_SECONDS, hop_seconds: float | None = None, batch_size: int = 64) -> np.ndarray:
    """``(patches, dims)`` float32: ``layer`` of ``module`` for each patch of ``waveform`` (``(samples,)``
    at ``sample_rate`` Hz; :func:`musicnn_patches`), in eval mode without gradients, ``batch_size`` patches
    at a time. Per-frame layers (``timbral``, ``cnn1``, ``pool1``, ...) are flattened into each patch's row in
    TF's order (time first). The vgg models take 3 s patches only."""
    n_frames = patch_frames(patch_seconds)
    if module.n_frames is not None and module.n_frames != n_frames:
        raise ValueError(f"this model takes patches of {module.n_frames} frames (3 s), not {patch_seconds} s")
    x = torch.from_numpy(musicnn_patches(waveform, sample_rate, patch_seconds, hop_seconds))
    device = next(module.parameters()).device
    module.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out = module(x[start:start + batch_size].to(device))
            if layer not in out:
                raise ValueError(f"unknown layer {layer!r}; this model has {', '.join(out)}")
            rows.append(out[layer].flatten(1).cpu().numpy())
    return np.concatenate(rows)


def layer_sizes(module: Musicnn | MusicnnVGG, patch_seconds: float = PATCH_SECONDS) -> dict[str, int]:
    """``layer -> dims`` of :func:`embed`'s rows for patches of ``patch_seconds`` (one zero patch run through)."""
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, patch_frames(patch_seconds), N_MELS, device=next(module.parameters()).device))
    return {name: math.prod(value.shape[1:]) for name, value in out.items()}


def embedding_model(name: str, weights: str | Path | None = None) -> EmbeddingModel:
    """:func:`load_musicnn` as an :class:`~embeddings.base.EmbeddingModel` (its ``embed`` bound to the module)."""
    module = load_musicnn(name, weights)
    return EmbeddingModel(name, SAMPLE_RATE, PATCH_SECONDS, layer_sizes(module), partial(embed, module))
