"""What a trained model costs: parameters, FLOPs, size on disk and CPU latency (pure functions).

:func:`model_stats` gathers the numbers a trial records at its end (``training/trial.py``) and
``python -m tools.stats`` prints, for a :class:`models.classifiers.Classifier` and its input length in
samples (the model's input: one segment of a clip, ``FinishedTrial.segment_length``; a clip evaluated
as ``k`` segments costs ``k`` times the FLOPs and latency):

* ``params_total``: every parameter of the model (buffers such as a fixed mel filterbank are not
  parameters; they count in ``model_bytes``). ``params_frontend``, ``params_frontend_learnable``: the
  front-end's, all of them and those its configuration trains (``requires_grad`` as built: a fixed DMEL
  window has 0, a trainable one 1, its lambda; a warm-up freeze does not count as fixed).
  ``params_head``: the rest.
* ``flops_frontend``, ``flops_head``: floating-point operations of one forward pass on one input
  (batch 1, eval mode, on the CPU), front-end (with the standardisation) and head counted apart.
  **Convention: a multiply-add is 2 FLOPs** (:class:`torch.utils.flop_counter.FlopCounterMode`'s; fvcore and
  ptflops count MACs, half of it). FlopCounterMode counts matrix products and convolutions only
  (``mm``, ``addmm``, ``bmm``, ``convolution``, attention): elementwise work (logs, ReLUs, batch norm,
  pooling, the power ``|Z|^2``) is not counted, and neither is an FFT: :data:`FFT_FORMULAS` adds the FFTs
  analytically, the usual radix-2 estimate (FFTW's benchmark convention) of ``5 N log2 N`` per complex
  transform of ``N`` points and ``2.5 N log2 N`` per real one (``rfft``/``irfft``). ``flops_frontend_fft``
  is that FFT part of ``flops_frontend`` on its own. What is counted is what runs: on the CPU a fixed mel
  filterbank is applied band by band (only its nonzero blocks: :func:`models.functional.apply_filterbank`),
  fewer FLOPs than the dense product a GPU runs.
* ``model_bytes``: the state dict (parameters and buffers) as ``torch.save`` writes it.
* ``latency_ms_cpu``: the median wall time of :data:`LATENCY_RUNS` forward passes on one input (batch 1,
  eval mode, ``torch.no_grad``, float32: ``amp`` off) on one CPU thread (``torch.set_num_threads(1)``,
  restored after), after :data:`LATENCY_WARMUP` untimed pass; fewer passes (at least one) for a slow model,
  once the timed ones took :data:`LATENCY_BUDGET_S` (a full-length DMEL window takes seconds per pass).
  A timing: it varies with the machine and its load; compare latencies measured on one machine.
"""
from __future__ import annotations

import copy
import io
import math
import statistics
import time
import warnings
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

LATENCY_RUNS = 10
LATENCY_WARMUP = 1
LATENCY_BUDGET_S = 2.0  # timed passes stop early once they have taken this long (at least one is timed)
# the report keys (training/trial.py records them in a trial's last report)
REPORT_KEYS = ("params_total", "params_frontend_learnable", "flops_frontend", "flops_head", "flops_frontend_fft",
               "model_bytes", "latency_ms_cpu")

aten = torch.ops.aten


def fft_flops(n: int, real: bool) -> int:
    """FLOPs of one ``n``-point FFT: ``5 n log2 n`` (complex), half that for a real input or output."""
    if n <= 1:
        return 0
    return round((2.5 if real else 5.0) * n * math.log2(n))


def _transforms(shape, dim) -> tuple[int, int]:
    """``(transforms, points per transform)`` of an FFT over ``dim`` of a tensor of ``shape``."""
    dims = [d % len(shape) for d in dim]
    n = math.prod(shape[d] for d in dims)
    return math.prod(shape) // max(n, 1), n


def _r2c(input_shape, dim, normalization, onesided, *args, out_shape=None, **kwargs) -> int:
    count, n = _transforms(input_shape, dim)
    return count * fft_flops(n, real=True)


def _c2r(input_shape, dim, normalization, last_dim_size, *args, out_shape=None, **kwargs) -> int:
    count, n = _transforms(out_shape, dim)  # the real output holds the transform's length
    return count * fft_flops(n, real=True)


def _c2c(input_shape, dim, normalization, forward, *args, out_shape=None, **kwargs) -> int:
    count, n = _transforms(input_shape, dim)
    return count * fft_flops(n, real=False)


# FlopCounterMode's custom_mapping: the FFTs it does not count (torch.fft.*, torch.stft all end in these)
FFT_FORMULAS = {aten._fft_r2c: _r2c, aten._fft_c2r: _c2r, aten._fft_c2c: _c2c}
FFT_OPS = frozenset(FFT_FORMULAS)


def frontend_learnable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The front-end's parameters that its configuration trains: those learnable when the model was
    built (:meth:`Classifier.set_frontend_training` keeps them while a warm-up freezes them), else the
    ones with ``requires_grad`` now."""
    kept = getattr(model, "_frontend_learnable", None)
    if kept is not None:
        return list(kept)
    return [p for p in model.frontend.parameters() if p.requires_grad]


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``params_total``, ``params_frontend``, ``params_frontend_learnable``, ``params_head`` (elements;
    a parameter shared by two modules counts once)."""
    total = sum(p.numel() for p in model.parameters())
    frontend = sum(p.numel() for p in model.frontend.parameters())
    learnable = sum(p.numel() for p in {id(p): p for p in frontend_learnable_parameters(model)}.values())
    return {"params_total": total, "params_frontend": frontend, "params_frontend_learnable": learnable,
            "params_head": total - frontend}


def count_flops(fn: Callable[[], object]) -> tuple[int, int, object]:
    """``(FLOPs, of which FFT, fn's result)`` of running ``fn()`` (:class:`FlopCounterMode` plus
    :data:`FFT_FORMULAS`)."""
    with FlopCounterMode(display=False, custom_mapping=FFT_FORMULAS) as counter:
        result = fn()
    by_op = counter.get_flop_counts().get("Global", {})
    fft = sum(v for op, v in by_op.items() if _packet(op) in FFT_OPS)
    return counter.get_total_flops(), fft, result


def _packet(op):
    """An overload's packet (``aten._fft_r2c.default`` -> ``aten._fft_r2c``), as the counts are keyed."""
    return getattr(op, "overloadpacket", op)


def cpu_copy(model: nn.Module) -> nn.Module:
    """A float32 copy of ``model`` on the CPU in eval mode (``amp`` off), leaving ``model`` as it was."""
    clone = copy.deepcopy(model).cpu().float().eval()
    if hasattr(clone, "amp"):
        clone.amp = False
    return clone


def flop_counts(model: nn.Module, length: int) -> dict[str, int]:
    """``flops_frontend`` (``model.features``: the front-end and the standardisation), ``flops_head`` and
    ``flops_frontend_fft`` (the FFT part of ``flops_frontend``) for one input of ``length`` samples, on a
    CPU copy of ``model`` in eval mode."""
    clone = model if _is_cpu_eval(model) else cpu_copy(model)
    x = torch.zeros(1, length)
    with torch.no_grad():
        frontend, fft, spec = count_flops(lambda: clone.features(x))
        head, _, _ = count_flops(lambda: clone.head(spec))
    return {"flops_frontend": int(frontend), "flops_head": int(head), "flops_frontend_fft": int(fft)}


def _is_cpu_eval(model: nn.Module) -> bool:
    return (not model.training and not getattr(model, "amp", False)
            and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in model.state_dict().values()
                    if t.is_floating_point()))


def model_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s state dict as ``torch.save`` writes it (a ``best_model.pt``)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def latency_ms_cpu(model: nn.Module, length: int, runs: int = LATENCY_RUNS, warmup: int = LATENCY_WARMUP,
                   budget_s: float = LATENCY_BUDGET_S) -> float:
    """Median milliseconds of one forward pass on one input of ``length`` samples, on one CPU thread
    (a CPU copy of ``model`` in eval mode, float32; torch's thread count restored after): ``warmup``
    untimed passes, then ``runs`` timed ones, or fewer (at least one) once they took ``budget_s``."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    clone = model if _is_cpu_eval(model) else cpu_copy(model)
    x = torch.randn(1, length, generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        with torch.no_grad():
            for _ in range(warmup):
                clone(x)
            while len(times) < runs and sum(times) < budget_s:
                start = time.perf_counter()
                clone(x)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return 1000.0 * statistics.median(times)


def model_stats(model: nn.Module, length: int, latency: bool = True, runs: int = LATENCY_RUNS) -> dict:
    """Every number above for ``model`` (a :class:`Classifier`, left as it was) on inputs of ``length``
    samples: :func:`parameter_counts`, :func:`flop_counts`, :func:`model_bytes` and, with ``latency``,
    :func:`latency_ms_cpu` (else NaN)."""
    clone = cpu_copy(model)
    out = {**parameter_counts(model), **flop_counts(clone, length), "model_bytes": model_bytes(model)}
    out["latency_ms_cpu"] = latency_ms_cpu(clone, length, runs) if latency else math.nan
    return out


def report_stats(model: nn.Module, length: int) -> dict:
    """:data:`REPORT_KEYS` of :func:`model_stats`, for a trial's last report. A model the counters cannot
    run (an error in one of them) gets NaN there, with a warning naming the error, so a trained trial is
    never lost to its statistics."""
    try:
        stats = model_stats(model, length)
    except Exception as err:  # noqa: BLE001 - the statistics are a by-product of the trial
        warnings.warn(f"model statistics not recorded: {type(err).__name__}: {err}")
        stats = {}
    return {k: stats.get(k, math.nan) for k in REPORT_KEYS}
