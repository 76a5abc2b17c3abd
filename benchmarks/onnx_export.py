"""Size, latency and accuracy of a trial exported to ONNX: PyTorch vs onnxruntime float32 vs dynamic int8.

    python benchmarks/onnx_export.py --fixture /tmp/onnx_bench [--repeats 50] [--batch 1 64]
    python benchmarks/onnx_export.py --experiment ray_results/audio_mnist --data_dir data/fsdd [--trial ID ...]

``--fixture DIR`` first trains the small run of tests/test_onnx_export.py (generated FSDD tones,
``--name=audio_mnist --max_epochs=1``, 16 mels, two segments per clip; DMEL trainable, torchaudio's fixed
mel, Ada-STFT with n_fft 256) under DIR with ``main.py``, then measures its trials. Otherwise every
finished trial of ``--experiment`` (or ``--trial``) is measured on its test clips, read from
``<data_dir>/recordings/<id>.wav`` (FSDD's layout).

Per trial: ``size`` of each model on disk (KiB); ``acc`` on the test clips (mean
segment logits per clip) of PyTorch (``build_trained``), onnxruntime float32, int8 (the head quantised, the
front-end float: ``predict.py --onnx``'s model.int8.onnx) and ``int8 all`` (the front-end's DFT and mel
products quantised too), and the share of clips whose int8 decision is float's; ``latency``: the median of ``--repeats`` runs of one batch of
``--batch`` segments, after 3 warm-up runs, on one thread (``SessionOptions.intra_op_num_threads=1``,
``torch.set_num_threads(1)``), in ms. Prints one Markdown table.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def train_fixture(base: Path) -> tuple[Path, Path]:
    """The test's tiny experiment under ``base``: ``(experiment folder, data folder)``."""
    from tests.fixtures import make_fsdd

    data = make_fsdd(base / "fsdd", takes=3)
    cmd = [sys.executable, str(ROOT / "main.py"), "--name=audio_mnist", "--num_cpus=2", "--max_epochs=1",
           f"--data_dir={data}", f"--ray_root_dir={base / 'rr'}", "--set", "n_mels=16", "--set", "init_lambd=13.333",
           "--set", "trainable=True", "--set", "lr_model=0.003", "--set", "split_parts=2", "--set", "n_fft=256",
           "--set", "frontend=['gaussian', 'torchaudio_mel', 'adastft']"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return base / "rr" / "audio_mnist", data


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def measure(trial, data: Path, repeats: int, batches: list[int]) -> dict:
    import pandas as pd
    import torch

    from inference.audio import read_clip
    from inference.checkpoint import build_trained
    from inference.onnx_export import export_dir, quantize_int8, run_segments, session
    from inference.onnx_predict import aggregate

    checkpoint = Path(trial.checkpoint_dir)
    own = pd.read_csv(checkpoint / "predictions.csv", dtype=str)
    files = [data / "recordings" / f"{i}.wav" for i in own["id"]]
    truth = np.array([trial.class_names.index(c) for c in
                      (own["label"] if "label" in own else [Path(f).stem.split("_")[0] for f in files])])
    clips = np.stack([read_clip(f, trial.sample_rate, trial.n_points, trial.padding, trial.float16) for f in files])
    x = clips[:, :trial.segment_length * trial.n_segments].reshape(-1, trial.segment_length)
    model = build_trained(trial)
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_dir(trial, tmp, model)
        paths["int8 all"] = quantize_int8(paths["onnx"], Path(tmp) / "model.int8all.onnx", frontend=True)
        kinds = ("onnx", "int8", "int8 all")
        sessions = {kind: session(paths[kind], threads=1) for kind in kinds}
        sizes = {kind: paths[kind].stat().st_size / 1024 for kind in kinds}
        torch.set_num_threads(1)
        with torch.no_grad():
            torch_logits = model(torch.from_numpy(x))[0].numpy()
        preds = {"torch": aggregate(torch_logits, trial.n_segments)[0].argmax(1)}
        for kind, sess in sessions.items():
            preds[kind] = aggregate(run_segments(sess, x), trial.n_segments)[0].argmax(1)
        row = {"trial": f"{trial.trial_id} ({trial.config['frontend']})", "clips": len(files),
               "onnx KiB": sizes["onnx"], "int8 KiB": sizes["int8"], "int8 all KiB": sizes["int8 all"],
               "acc torch": float((preds["torch"] == truth).mean()), "acc onnx": float((preds["onnx"] == truth).mean()),
               "acc int8": float((preds["int8"] == truth).mean()),
               "acc int8 all": float((preds["int8 all"] == truth).mean()),
               "int8 = float": float((preds["int8"] == preds["onnx"]).mean()),
               "int8 all = float": float((preds["int8 all"] == preds["onnx"]).mean())}
        for batch in batches:
            seg = np.ascontiguousarray(np.resize(x, (batch, x.shape[1])), dtype=np.float32)
            t = torch.from_numpy(seg)
            with torch.no_grad():
                row[f"torch ms (b{batch})"] = median_ms(lambda: model(t), repeats)
            for kind, sess in sessions.items():
                name = sess.get_inputs()[0].name
                row[f"{kind} ms (b{batch})"] = median_ms(lambda: sess.run(None, {name: seg}), repeats)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fixture", type=Path, help="train the test's tiny run under this folder, then measure it")
    source.add_argument("--experiment", help="an experiment folder <storage>/<name>")
    parser.add_argument("--data_dir", type=Path, help="the FSDD folder (with recordings/) of --experiment")
    parser.add_argument("--trial", nargs="*", default=None, help="trial ids (default: every finished trial)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64], help="segments per timed run")
    args = parser.parse_args(argv)

    from figures.read import load_experiment
    from inference.checkpoint import read_trial

    if args.fixture is not None:
        experiment, data = train_fixture(args.fixture)
    else:
        if args.data_dir is None:
            parser.error("--experiment needs --data_dir (the corpus folder its test clips are read from)")
        experiment, data = args.experiment, args.data_dir
    df, _ = load_experiment(experiment)
    if args.trial:
        df = df[df["trial_id"].astype(str).isin(args.trial)]
    rows = [measure(read_trial(str(r["checkpoint_dir"]), str(r["trial_id"])), Path(data), args.repeats, args.batch)
            for _, r in df.sort_values("trial_id").iterrows()]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    print(json.dumps(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
