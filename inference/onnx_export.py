"""A finished trial as one ONNX graph, front-end included: ``(batch, segment_samples)`` float32 waveforms in,
``(batch, n_classes)`` logits out (docs/predict.md, "Export to ONNX").

A trained front-end is first put in its *inference form* (:func:`inference_frontend`): the same transform with
everything learned frozen into constants and computed with plain operations the ONNX exporter knows. The STFT
of DMEL (``gaussian``), the fixed mel (``torchaudio_mel``), the trainable mel filterbank and Ada-STFT becomes
one strided ``conv1d`` of the padded signal with the window-weighted one-sided DFT kernels (computed in float64
from the learned window, or Ada-STFT's learned kernels, then stored as float32): no FFT, no custom autograd
Function (DMEL's closed-form window gradient), no scratch buffers. Then the front-end's mel matrix and its
compression (``log(. + 1e-10)``, decibels with ``top_db``, or Ada-STFT's ``log10(1 + 10 x)``).

A front-end without an inference form is exported as it is when the exporter can trace it; one that cannot
(LEAF's and PCEN's IIR smoother is torchaudio's ``lfilter``, a compiled op with no ONNX form) raises
:class:`NotExportable`, one line saying why.

The exporter is ``torch.onnx.export(..., dynamo=True)`` (torch.export, then onnxscript's ATen-to-ONNX
translation; the TorchScript-based exporter is deprecated in torch 2.x), opset :data:`OPSET`, with a dynamic
batch axis. Its graph optimiser is off (``optimize=False``): onnxscript 0.7.2's drops the ``+ 1e-10`` before the
log (a silent segment then gives ``log(0)``); onnxruntime optimises the graph itself when it loads it. :func:`quantize_int8` writes the dynamic int8 form (``onnxruntime.quantization.quantize_dynamic``,
QInt8 weights). The meta file ``model.json`` (:func:`write_meta`) holds what a caller needs to read clips
and cut segments without the trial (class names, sample rate, clip and segment length).
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inference.checkpoint import FinishedTrial, PredictError, build_trained
from models import functional as F
from models.classifiers import Classifier, standardize

OPSET = 18  # the dynamo exporter's own opset (onnxscript's translations are written for it)
MAX_KERNEL_ELEMENTS = 2**26  # window-weighted DFT kernels above this (256 MiB of float32) are refused
INPUT, OUTPUT = "waveform", "logits"
# torch vs its inference form (float32 DFT by matrix product vs FFT), on the front-end's log output
FRONTEND_ATOL = 2e-3


class NotExportable(PredictError):
    """A trial whose front-end has no ONNX form; the message is one line saying why."""


class FramedSTFT(nn.Module):
    """``|STFT|^2`` (``magnitude=False``) or ``|STFT|`` with ``center=True`` padding (``n_fft // 2`` samples
    of ``pad_mode`` each side) as one strided ``conv1d``: the frames times the window-weighted DFT kernels.

    Args:
        window: ``(L,)`` analysis window, ``L <= n_fft`` (centred in the frame, as ``torch.stft``).
        n_fft, hop_length: samples.
        kernels: ``(2, n_fft // 2 + 1, n_fft)`` real and imaginary kernels (Ada-STFT's learned ones), or
            ``None``: the exact one-sided DFT, in float64.
        remove_mean: subtract each signal's mean first.
    Input ``(batch, time)``; output ``(batch, n_fft // 2 + 1, frames)``.
    """

    def __init__(self, window: torch.Tensor, n_fft: int, hop_length: int, pad_mode: str = "constant",
                 kernels: torch.Tensor | None = None, remove_mean: bool = False, magnitude: bool = False):
        super().__init__()
        n_freqs = n_fft // 2 + 1
        if 2 * n_freqs * n_fft > MAX_KERNEL_ELEMENTS:
            raise NotExportable(f"n_fft={n_fft}: its DFT kernels ({2 * n_freqs} x {n_fft}) are too large for the "
                                "ONNX graph; export a trial with a shorter window (window_mode='optimized')")
        window = window.detach().double().cpu()
        left = (n_fft - window.numel()) // 2
        window = nn.functional.pad(window, (left, n_fft - window.numel() - left))
        if kernels is None:
            k = torch.arange(n_freqs, dtype=torch.int64)[:, None]
            n = torch.arange(n_fft, dtype=torch.int64)[None, :]
            angle = 2 * math.pi * ((k * n) % n_fft).double() / n_fft
            kernels = torch.stack([torch.cos(angle), -torch.sin(angle)])
        weight = (kernels.detach().double().cpu() * window).reshape(2 * n_freqs, 1, n_fft)
        self.register_buffer("weight", weight.float())
        self.n_fft, self.hop_length, self.pad_mode = n_fft, hop_length, pad_mode
        self.remove_mean, self.magnitude, self.n_freqs = remove_mean, magnitude, n_freqs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.remove_mean:
            x = x - x.mean(dim=-1, keepdim=True)
        half = self.n_fft // 2
        padded = nn.functional.pad(x.unsqueeze(1), (half, half), mode=self.pad_mode)
        z = nn.functional.conv1d(padded, self.weight, stride=self.hop_length)  # (batch, 2 F, frames)
        power = z[:, :self.n_freqs].square() + z[:, self.n_freqs:].square()
        return power.clamp(min=F.MAGNITUDE_FLOOR).sqrt() if self.magnitude else power


class SpectralFrontend(nn.Module):
    """:class:`FramedSTFT`, then an optional ``(n_freqs, n_bands)`` filterbank, then ``compression``:
    ``"log"`` (``log(. + 1e-10)``), ``"db"`` (``10 log10(max(., 1e-10))`` floored ``top_db`` below each
    example's peak), ``"log10_1p"`` (``log10(1 + 10 x)``) or ``None``."""

    def __init__(self, stft: FramedSTFT, filterbank: torch.Tensor | None, compression: str | None,
                 top_db: float | None = None):
        super().__init__()
        self.stft, self.compression, self.top_db = stft, compression, top_db
        self.register_buffer("fb", None if filterbank is None else filterbank.detach().float().cpu().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.stft(x)
        if self.fb is not None:
            spec = torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)
        if self.compression == "log":
            return torch.log(spec + F.LOG_EPS)
        if self.compression == "db":
            db = 10.0 * torch.log10(spec.clamp(min=F.LOG_EPS))
            peak = db.amax(dim=(-2, -1), keepdim=True)
            return torch.maximum(db, peak - self.top_db)
        if self.compression == "log10_1p":
            return torch.log(1 + 10 * spec) / math.log(10)
        return spec


class FixedFilterbank(nn.Module):
    """SincNet's inference form: its band-pass filters at the learned cut-offs as a constant ``conv1d``
    (``same`` padding), then the energy pooled every ``hop_length`` samples
    (:func:`models.frontend_functional.pooled_energy`) and ``log(. + 1e-10)`` (``log``)."""

    def __init__(self, filters: torch.Tensor, hop_length: int, remove_mean: bool, log: bool):
        super().__init__()
        self.register_buffer("filters", filters.detach().float().cpu().unsqueeze(1).clone())
        self.hop_length, self.remove_mean, self.log = hop_length, remove_mean, log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from models.frontend_functional import pooled_energy

        if self.remove_mean:
            x = x - x.mean(dim=-1, keepdim=True)
        y = nn.functional.conv1d(x.unsqueeze(1), self.filters, padding=self.filters.shape[-1] // 2)
        energy = pooled_energy(y, self.hop_length)
        return torch.log(energy + F.LOG_EPS) if self.log else energy


class StackedFrontend(nn.Module):
    """Several inference-form front-ends stacked as channels (:class:`models.frontends.AdaSTFTStack`)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members], dim=1)


@torch.no_grad()
def inference_frontend(frontend: nn.Module) -> nn.Module:
    """The inference form of a trained front-end (module docstring), on the CPU, in eval mode: DMEL / DSPEC,
    :class:`models.frontends.FixedMel`, :class:`models.trainable_mel.TrainableMel`, Ada-STFT (one or a
    stack). Any other front-end is returned as it is (its own forward is what gets exported).
    Raises :class:`NotExportable` for one whose forward the ONNX exporter cannot trace (PCEN, LEAF)."""
    from models.frontends import DMEL, AdaSTFT, AdaSTFTStack, FixedMel, GaussianSpectrogram
    from models.pcen import PCEN, PCENCompressed
    from models.sincnet import SincNet
    from models.trainable_mel import TrainableMel

    if isinstance(frontend, DMEL):
        stft = _gaussian_stft(frontend.spectrogram)
        fb = frontend.filterbank(stft.n_fft, torch.device("cpu"), torch.float32)
        return SpectralFrontend(stft, fb, "log" if frontend.log else None).eval()
    if isinstance(frontend, GaussianSpectrogram):
        return SpectralFrontend(_gaussian_stft(frontend), None, None).eval()
    if isinstance(frontend, (FixedMel, TrainableMel)):
        spectrogram = frontend.mel.spectrogram if isinstance(frontend, FixedMel) else frontend.spectrogram
        stft = _torchaudio_stft(spectrogram, frontend.remove_mean)
        if isinstance(frontend, FixedMel):
            fb, top_db = frontend.mel.mel_scale.fb, frontend.top_db
        else:
            fb, top_db = frontend.filterbank.clamp(min=0.0), None
        compression = None if not frontend.log else "log" if top_db is None else "db"
        return SpectralFrontend(stft, fb, compression, top_db).eval()
    if isinstance(frontend, AdaSTFT):
        stft = FramedSTFT(frontend.window, frontend.n_fft, frontend.hop_length, frontend.pad_mode,
                          frontend.kernels, magnitude=True)
        return SpectralFrontend(stft, frontend.fb, "log10_1p" if frontend.log else None).eval()
    if isinstance(frontend, AdaSTFTStack):
        return StackedFrontend([inference_frontend(m) for m in frontend.members]).eval()
    if isinstance(frontend, SincNet):
        return FixedFilterbank(frontend.filters(), frontend.hop_length, frontend.remove_mean, frontend.log).eval()
    if any(isinstance(m, PCEN) for m in frontend.modules()):
        where = "its compression='pcen'" if isinstance(frontend, PCENCompressed) else "its sPCEN"
        raise NotExportable(f"front-end {type(frontend).__name__} cannot be exported to ONNX: {where} smooths with "
                            "torchaudio's lfilter, a compiled IIR loop with no ONNX form; choose a trial without "
                            "PCEN (compression='log', or leaf_compression='log_tbn')")
    return frontend.cpu().eval()


def _gaussian_stft(spec) -> FramedSTFT:
    """DMEL's STFT: the Gaussian window of the effective lambda at the current geometry, zero padding."""
    win_length, n_fft = spec.geometry()
    window = F.gaussian_window(spec.effective_lambd().detach().double().cpu(), win_length, spec.normalize_window)
    return FramedSTFT(window, n_fft, spec.hop_length, "constant", remove_mean=spec.remove_mean)


def _torchaudio_stft(spectrogram, remove_mean: bool) -> FramedSTFT:
    """The STFT of a ``torchaudio.transforms.Spectrogram`` (power 2, not normalised, ``center=True``)."""
    if spectrogram.power != 2.0 or spectrogram.normalized or not spectrogram.center or spectrogram.pad:
        raise NotExportable("a torchaudio Spectrogram other than power 2, center=True, no extra padding, not "
                            "normalised has no inference form here")
    return FramedSTFT(spectrogram.window, spectrogram.n_fft, spectrogram.hop_length, spectrogram.pad_mode,
                      remove_mean=remove_mean)


class ExportedClassifier(nn.Module):
    """What the ONNX graph computes: the inference-form front-end, the trial's standardisation, the head.
    Input ``(batch, segment_samples)`` float32; output ``(batch, n_classes)`` logits. (A trial trained with
    ``amp`` ran its head in bfloat16; this runs it in float32.)"""

    def __init__(self, frontend: nn.Module, head: nn.Module, standardize: bool):
        super().__init__()
        self.frontend, self.head, self.standardize = frontend, head, standardize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.frontend(x)
        return self.head(standardize(spec) if self.standardize else spec)


def exportable_model(model: Classifier) -> ExportedClassifier:
    """``model`` (a trained :class:`models.classifiers.Classifier`) with its front-end in inference form,
    on the CPU, in eval mode."""
    model = model.cpu().eval()
    return ExportedClassifier(inference_frontend(model.frontend), model.head, model.standardize).eval()


def export_onnx(trial: FinishedTrial, path: str | Path, opset: int = OPSET, model: Classifier | None = None) -> Path:
    """Write ``trial``'s trained model (``model``, else :func:`inference.checkpoint.build_trained`) to ``path``
    as one ONNX graph: input ``waveform`` ``(batch, segment_samples)`` float32, output ``logits``
    ``(batch, n_classes)``, batch dynamic. Returns ``path``. Raises :class:`NotExportable` (one line) for a
    front-end that has no ONNX form or that the exporter fails on."""
    if trial.config["classifier"] is not None:
        raise NotExportable(f"trial {trial.trial_id} is a scikit-learn head on embeddings, not a network: "
                            "there is nothing to export to ONNX")
    net = exportable_model(model if model is not None else build_trained(trial, "cpu"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, trial.segment_length)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset, input_names=[INPUT],
                                        output_names=[OUTPUT], dynamic_shapes=({0: torch.export.Dim("batch")},),
                                        optimize=False, verbose=False, report=False)
    except NotExportable:
        raise
    except Exception as err:  # the exporter's own error, reduced to the line that names the operation
        raise NotExportable(f"front-end {type(net.frontend).__name__} of trial {trial.trial_id} did not export to "
                            f"ONNX: {_exporter_reason(err)}") from None
    program.save(str(path))
    _strip_metadata(path)
    problem = _check_batches(path, net, trial.segment_length)
    if problem is not None:
        path.unlink(missing_ok=True)
        raise NotExportable(f"front-end {type(net.frontend).__name__} of trial {trial.trial_id} exported to ONNX "
                            f"but {problem}")
    return path


def _strip_metadata(path: Path) -> None:
    """Drop the exporter's per-node metadata (Python stack traces and module scopes: half the file of a small
    model); the graph is unchanged."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path))


def _exporter_reason(err: Exception) -> str:
    """The one line of an exporter error that says what failed (its summary's innermost error)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if "No ONNX function found" in line or "Unsupported" in line]
    line = named[0] if named else next((line for line in lines if line.startswith("<class")), lines[0] if lines
                                       else type(err).__name__)
    if line.startswith("<class") and ">: " in line:
        line = line.split(">: ", 1)[1]
    return " ".join(line.replace("\x1b[96m", "").replace("\x1b[0m", "").split())[:300]


def _check_batches(path: Path, net: nn.Module, length: int) -> str | None:
    """``None`` when onnxruntime's logits of random batches of 1 and 3 segments are ``net``'s (within
    ``1e-3`` of their scale), else what went wrong (a batch axis the trace fixed, another answer)."""
    rng = np.random.default_rng(0)
    sess = session(path)
    for batch in (1, 3):
        x = (0.1 * rng.standard_normal((batch, length))).astype(np.float32)
        try:
            got = sess.run(None, {INPUT: x})[0]
        except Exception as err:  # onnxruntime's error: a fixed batch axis, most often
            return f"onnxruntime cannot run it on {batch} segment(s) ({' '.join(str(err).split())[:200]})"
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-3 * (1 + np.abs(want).max())):
            return f"onnxruntime's logits differ from PyTorch's on {batch} random segment(s)"
    return None


def quantize_int8(path: str | Path, out: str | Path | None = None, frontend: bool = False) -> Path:
    """The dynamic int8 form of the ONNX model at ``path`` (QInt8 weights, activations quantised at run
    time, per tensor): ``<name>.int8.onnx`` beside it unless ``out`` is given. Returns the path written.

    ``frontend=False`` (the default) keeps the front-end in float32: only the head's ``MatMul``/``Gemm``/
    ``Conv`` are quantised. The front-end's DFT ``Conv`` and mel ``MatMul`` read a waveform and a power
    spectrum whose range spans many decades; one int8 scale per tensor flattens the quiet bins to zero,
    which the log then turns into ``log(1e-10)`` (on the test fixture, int8 everywhere changed DMEL's
    decision on a third of the clips). The front-end's nodes are those that read a ``frontend.*`` constant.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    path = Path(path)
    out = Path(out) if out is not None else path.with_name(path.name.removesuffix(".onnx") + ".int8.onnx")
    pre = out.with_name(out.name + ".pre.onnx")
    try:
        quant_pre_process(str(path), str(pre), skip_symbolic_shape=True)
        excluded = [] if frontend else frontend_nodes(onnx.load(str(pre)))
        quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                         op_types_to_quantize=["MatMul", "Gemm", "Conv"])
    finally:
        pre.unlink(missing_ok=True)
    return out


def frontend_nodes(model) -> list[str]:
    """Names of the nodes of an exported ``onnx.ModelProto`` that read one of the front-end's constants
    (initialisers named ``frontend.*``, the state-dict names of :class:`ExportedClassifier`)."""
    constants = {init.name for init in model.graph.initializer if init.name.startswith("frontend.")}
    return [node.name for node in model.graph.node if constants & set(node.input)]


def write_meta(trial: FinishedTrial, path: str | Path) -> Path:
    """``model.json``: what :mod:`inference.onnx_predict` needs besides the graph (class names in logit
    order, sample rate in Hz, ``n_points`` samples per clip, ``padding``, ``float16``, ``segment_length``
    samples per segment, ``segment_hop`` samples between their starts, ``n_segments``, ``batch_size``) and where it came from."""
    path = Path(path)
    meta = {"class_names": trial.class_names, "sample_rate": trial.sample_rate, "n_points": trial.n_points,
            "padding": trial.padding, "float16": trial.float16, "segment_length": trial.segment_length,
            "segment_hop": trial.segment_hop,
            "n_segments": trial.n_segments, "batch_size": int(trial.config["batch_size"]),
            "input": INPUT, "output": OUTPUT, "frontend": trial.config["frontend"],
            "model_name": trial.config["model_name"], "trial_id": trial.trial_id, "experiment": trial.experiment,
            "checkpoint": trial.checkpoint_dir}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=1) + "\n")
    return path


def export_dir(trial: FinishedTrial, out_dir: str | Path, model: Classifier | None = None) -> dict[str, Path]:
    """``out_dir/model.onnx``, ``out_dir/model.int8.onnx`` and ``out_dir/model.json`` for ``trial``
    (``predict.py --onnx DIR``); returns ``{"onnx", "int8", "meta"}`` -> path."""
    out = Path(out_dir)
    onnx_path = export_onnx(trial, out / "model.onnx", model=model)
    return {"onnx": onnx_path, "int8": quantize_int8(onnx_path), "meta": write_meta(trial, out / "model.json")}


def session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU ``InferenceSession`` of ``path`` (``threads``: ``intra_op_num_threads``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_segments(sess, segments: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``(n, n_classes)`` float32 logits of ``segments`` ``(n, segment_length)``, ``batch_size`` at a time."""
    name = sess.get_inputs()[0].name
    parts = [sess.run(None, {name: np.ascontiguousarray(segments[i:i + batch_size], dtype=np.float32)})[0]
             for i in range(0, len(segments), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
