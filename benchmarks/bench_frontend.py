"""Forward + backward time and peak memory of every registered front-end, against torchaudio's fixed mel.

    python benchmarks/bench_frontend.py [--settings fsdd gtzan esc50 synthetic] [--frontends NAME ...]
        [--windows_ms MS ...] [--max_batch_elements N] [--threads 1] [--repeats 7] [--device cpu|cuda] [--gtzan_seconds 2.5] [--batch N] [--n_points N]

Every name of ``models.registry.FRONTENDS`` (or ``--frontends``) is built the way a trial
builds it, ``build_frontend(resolve_config({...}), n_points, sample_rate)``, at each setting and
window, so a new front-end appears here without editing this file; its own keys keep their
``training/config.py`` defaults. ``VARIANTS`` adds one row per option value (``compression=pcen``)
where the key exists. The window of a row sets ``init_window_ms`` (DMEL), ``fixed_win_ms``
(torchaudio's mel) and ``n_fft`` (Ada-STFT; the next power of two of the window, which is also
DMEL's and the fixed mel's FFT size).

Settings (the grids' values, read from ``search_spaces``):
  fsdd       audio_mnist grid: batch 64 x 5,500 samples at 8 kHz, hop 80, 64 mels; 10, 35, 300 ms
  gtzan      gtzan grid: batch 16 at 22,050 Hz, hop 512, 128 mels; 10, 46.4 (n_fft 1024), 300 ms;
             2.5 s crops by default (its split_parts=12 rows; --gtzan_seconds 30 for whole clips)
  esc50      esc50 grid: batch 32 x 5 s at 8 kHz, hop 40, 64 mels; 10, 35, 300 ms
  synthetic  time_frequency grid: batch 128 x 128 samples, hop 1, "full" window (n_fft 256),
             lambda 6.38 samples, linear spectrogram models (no sample rate, no mel)

Each case (setting, window, front-end) that builds runs in a fresh process on a random batch (one
that does not build is found in the parent):
  time     forward + backward of ``output.sum()`` (backward only where something requires grad: a
           fixed front-end costs its forward), alternated with the reference, one pair per repeat
           after a warm-up; ``x mel`` is the median of the per-pair ratios (robust on a shared
           machine), ``ms`` the candidate's median time.
  memory   peak growth during the first forward + backward: resident memory (Linux ``VmHWM`` reset
           before the call, minus ``VmRSS``; tracemalloc does not see torch's allocations) on the
           CPU, ``torch.cuda.max_memory_allocated`` above the allocated memory on CUDA; MB.
The reference is the registry's ``torchaudio_mel`` (Hann, power 2, HTK mel, log) at the row's window;
the synthetic setting has no mel (and no sample rate), so its reference is torchaudio's fixed Hann
``Spectrogram`` (power 2) at DSPEC's geometry. A front-end that does not build (or run) at a setting
prints as ``fails`` with its error under the tables. Prints two Markdown tables (time, memory).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from models.classifiers import build_frontend  # noqa: E402
from models.registry import list_frontends  # noqa: E402
from models.frontends import GaussianSpectrogram  # noqa: E402
from models.functional import next_power_of_2  # noqa: E402
from training.config import DEFAULTS, resolve_config  # noqa: E402

REFERENCE = "torchaudio_mel"  # the registry name of the reference (audio settings)
REFERENCE_LABEL = "*reference*"
SETTINGS = ("fsdd", "gtzan", "esc50", "synthetic")
VARIANTS = {"compression": ("pcen",)}  # option values measured as extra rows where the config key exists
SYNTHETIC_LAMBD = 6.38  # samples: the pulse width of the synthetic data (search_spaces.SIGMA_REF)


def settings(gtzan_seconds: float) -> dict[str, dict]:
    """Setting name -> ``config`` (trial config keys), ``batch``, ``n_points``, ``sample_rate`` and
    ``windows`` (ms; ``None`` = the setting's own window), from the grids in ``search_spaces``."""
    import search_spaces as s

    def audio(grid: dict, n_points: int, windows, model: str) -> dict:
        keys = ("sample_rate", "hop_length", "n_mels", "window_mode", "max_window_ms")
        config = {k: grid[k] for k in keys if k in grid}
        return {"config": {**config, "model_name": model}, "batch": grid["batch_size"], "n_points": n_points,
                "sample_rate": grid["sample_rate"], "windows": windows}

    fsdd, gtzan, esc50, tf = (s.audio_mnist(1), s.gtzan(1), s.esc50(1), s.time_frequency(1))
    return {
        "fsdd": audio(fsdd, fsdd["n_points"], s.DMEL_WINDOWS_MS, "mel_conv_net"),
        "gtzan": audio(gtzan, round(gtzan_seconds * gtzan["sample_rate"]), [10.0, 1000 * 1024 / s.MUSIC_RATE, 300.0],
                       "resnet18"),
        "esc50": audio(esc50, round(esc50["clip_seconds"] * esc50["sample_rate"]), s.DMEL_WINDOWS_MS, "cnn6"),
        "synthetic": {"config": {"model_name": "linear_net", "init_lambd": SYNTHETIC_LAMBD, "hop_length": tf["hop_length"], "window_mode": tf["window_mode"]},
                      "batch": tf["batch_size"], "n_points": tf["n_points"], "sample_rate": None, "windows": [None]},
    }


def candidates(names: list[str]) -> list[tuple[str, dict]]:
    """``(label, config overrides)``: each front-end, plus one row per ``VARIANTS`` value whose key exists."""
    rows = [(name, {"frontend": name}) for name in names]
    for key, values in VARIANTS.items():
        if key in DEFAULTS:
            rows += [(f"{name} {key}={v}", {"frontend": name, key: v}) for name in names for v in values
                     if v != DEFAULTS[key]]
    return rows


def window_keys(ms: float | None, sample_rate: int | None) -> dict:
    """The config keys a row's window sets (nothing for the synthetic setting's own window)."""
    if ms is None:
        return {}
    return {"init_window_ms": ms, "fixed_win_ms": ms, "n_fft": next_power_of_2(ms * sample_rate / 1000)}


def memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process from /proc, MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)


def reference_layer(case: dict) -> torch.nn.Module:
    """torchaudio's fixed mel at the case's window (``case["reference"]``: the setting's config keys), or
    (synthetic) its fixed spectrogram at DSPEC's geometry."""
    config = case["reference"]
    if case["sample_rate"] is not None:
        return build_frontend(resolve_config({**config, "frontend": REFERENCE}), case["n_points"], case["sample_rate"])
    import torchaudio

    probe = GaussianSpectrogram(config["init_lambd"], case["n_points"], config["hop_length"], config["window_mode"])
    win_length, n_fft = probe.geometry()
    return torchaudio.transforms.Spectrogram(n_fft=n_fft, win_length=win_length, hop_length=probe.hop_length,
                                             power=2.0, pad_mode="constant")


def step(layer: torch.nn.Module, x: torch.Tensor) -> None:
    """One forward + backward of ``layer(x).sum()`` (forward only when nothing requires grad)."""
    layer.zero_grad(set_to_none=True)
    out = layer(x)
    if out.requires_grad:
        out.sum().backward()


def timed(layer, x, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step(layer, x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def build(case: dict) -> tuple[torch.nn.Module | None, dict | None]:
    """``(layer, None)``, or ``(None, {"error": "does not build: ..."})`` for a front-end that cannot
    take the case's setting. ``case["config"]`` is ``None`` for the reference itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty-filter warnings at short windows: the same for every front-end
        try:
            layer = reference_layer(case) if case["config"] is None else \
                build_frontend(resolve_config(case["config"]), case["n_points"], case["sample_rate"])
        except Exception as err:  # noqa: BLE001 - a front-end that cannot run a setting is a result
            return None, {"error": f"does not build: {type(err).__name__}: {err}".splitlines()[0]}
    return layer, None


def measure(case: dict, device: torch.device, repeats: int, chunk_size: int | None,
            max_batch_elements: int | None = None) -> dict:
    """Peak memory of the candidate's first step, then ``repeats`` alternated (candidate, reference)
    pairs; runs in a fresh process."""
    warnings.simplefilter("ignore")
    layer, error = build(case)
    if error:
        return error
    layer = layer.to(device)
    for module in layer.modules():
        if chunk_size and isinstance(module, GaussianSpectrogram):
            module.chunk_size = chunk_size
        if max_batch_elements and hasattr(module, "max_batch_elements"):  # SincNet, LEAF's filterbank
            module.max_batch_elements = max_batch_elements
    reference = reference_layer(case).to(device)
    x = torch.randn(case["batch"], case["n_points"], device=device)
    try:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            step(layer, x)
            torch.cuda.synchronize(device)
            peak_mb = (torch.cuda.max_memory_allocated(device) - before) / 2**20
        else:
            Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from the current resident size
            before = memory_mb("VmRSS")
            step(layer, x)
            peak_mb = memory_mb("VmHWM") - before
        step(reference, x)  # warm-up
        pairs = []
        for i in range(repeats):  # alternate the order too: neither side always runs second
            first, second = (layer, reference) if i % 2 == 0 else (reference, layer)
            t_first, t_second = timed(first, x, device), timed(second, x, device)
            pairs.append((t_first, t_second) if i % 2 == 0 else (t_second, t_first))
    except Exception as err:  # noqa: BLE001 - out of memory, a length the front-end cannot take, ...
        return {"error": f"fails to run: {type(err).__name__}: {err}".splitlines()[0]}
    return {"ms": 1000 * statistics.median(c for c, _ in pairs), "ratio": statistics.median(c / r for c, r in pairs),
            "peak_mb": peak_mb}


def measure_in_subprocess(case: dict, args) -> dict:
    """:func:`measure` in a fresh process; a case that does not build is known here, without one."""
    if (error := build(case)[1]) is not None:
        return error
    cmd = [sys.executable, __file__, "--case", json.dumps(case), "--device", args.device,
           "--threads", str(args.threads), "--repeats", str(args.repeats)]
    if args.chunk_size:
        cmd += ["--chunk_size", str(args.chunk_size)]
    if args.max_batch_elements:
        cmd += ["--max_batch_elements", str(args.max_batch_elements)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"process died (exit {done.returncode}): {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(results: dict[str, dict[str, dict]], labels: list[str]) -> str:
    """Two Markdown tables, columns = settings and windows: forward + backward time as a ratio to the
    reference, and peak memory growth in MB with its ratio; then the failures."""
    columns = list(results)

    def table(title: str, reference_cell, cell) -> str:
        lines = [f"| {title} | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns),
                 f"| {REFERENCE_LABEL} | " + " | ".join(reference_cell(results[c][REFERENCE_LABEL]) for c in columns) + " |"]
        lines += [f"| {label} | " + " | ".join("fails" if "error" in results[c][label] else cell(results[c], label)
                                              for c in columns) + " |" for label in labels]
        return "\n".join(lines)

    def memory(column: dict, label: str) -> str:
        mb, ref = column[label]["peak_mb"], column[REFERENCE_LABEL].get("peak_mb")
        return f"{mb:.0f}" + (f" ({mb / ref:.1f}x)" if ref else "")

    time_table = table("forward + backward (x reference)",
                       lambda r: "fails" if "error" in r else f"{r['ms']:.1f} ms",
                       lambda column, label: f"{column[label]['ratio']:.2f}x")
    memory_table = table("peak memory growth, MB (x reference)",
                         lambda r: "fails" if "error" in r else f"{r['peak_mb']:.0f}", memory)
    failures = [f"- {label} at {c}: {results[c][label]['error']}" for c in columns
                for label in [REFERENCE_LABEL, *labels] if "error" in results[c][label]]
    return "\n\n".join([time_table, memory_table] + (["Failures:\n" + "\n".join(failures)] if failures else []))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--frontends", nargs="+", default=list(list_frontends()), metavar="NAME",
                   help=f"registry names (default: all of {', '.join(list_frontends())})")
    p.add_argument("--threads", type=int, default=1, help="torch threads per case (a 1-CPU trial runs one)")
    p.add_argument("--repeats", type=int, default=7, help="timed (candidate, reference) pairs per case")
    p.add_argument("--device", default="cpu")
    p.add_argument("--gtzan_seconds", type=float, default=2.5, help="GTZAN segment length, s (30: whole clips)")
    p.add_argument("--batch", type=int, help="override every setting's batch size")
    p.add_argument("--n_points", type=int, help="override every setting's signal length, samples")
    p.add_argument("--windows_ms", type=float, nargs="+", metavar="MS",
                   help="windows of the audio settings, ms (default: each setting's own three)")
    p.add_argument("--chunk_size", type=int, help="examples per STFT call in DMEL/DSPEC (default: their own rule)")
    p.add_argument("--max_batch_elements", type=int,
                   help="full-rate filter outputs SincNet/LEAF hold at once before checkpointing chunks of the batch "
                        "(default: models.frontend_functional.MAX_BATCH_ELEMENTS)")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: measure one JSON case in this process
    return p


def main():
    p = parser()
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.case:
        torch.manual_seed(0)
        print(json.dumps(measure(json.loads(args.case), torch.device(args.device), args.repeats, args.chunk_size,
                                 args.max_batch_elements)))
        return
    unknown = sorted(set(args.frontends) - set(list_frontends()))
    if unknown:
        p.error(f"--frontends: unknown {unknown}; the registry has {', '.join(list_frontends())}")
    rows = candidates(args.frontends)
    print(f"torch {torch.__version__}, {args.device}, {args.threads} thread(s), median of {args.repeats} "
          f"alternated pairs; load average {os.getloadavg()[0]:.1f}", flush=True)
    results: dict[str, dict[str, dict]] = {}
    for name, setting in settings(args.gtzan_seconds).items():
        if name not in args.settings:
            continue
        setting = {**setting, "batch": args.batch or setting["batch"], "n_points": args.n_points or setting["n_points"]}
        if args.windows_ms and setting["sample_rate"] is not None:
            setting["windows"] = args.windows_ms
        for ms in setting["windows"]:
            col = f"{name} {ms:.3g} ms" if ms is not None else name
            base = {**setting["config"], **window_keys(ms, setting["sample_rate"])}
            case = {k: setting[k] for k in ("batch", "n_points", "sample_rate")}
            results[col] = {REFERENCE_LABEL: measure_in_subprocess({**case, "config": None, "reference": base}, args)}
            for label, overrides in rows:
                results[col][label] = measure_in_subprocess({**case, "config": {**base, **overrides}, "reference": base},
                                                            args)
                r = results[col][label]
                print(f"  {col:18s} {label:28s} " + (r["error"] if "error" in r else
                      f"{r['ms']:9.1f} ms {r['ratio']:7.2f}x {r['peak_mb']:8.0f} MB"), flush=True)
    print()
    print(markdown(results, [label for label, _ in rows]))


if __name__ == "__main__":
    main()
