"""Predict audio files with a finished trial; draw and export its front-end (docs/predict.md).

    python predict.py --experiment ray_results/audio_mnist --best recordings/ --out predictions.csv
    python predict.py --experiment ray_results/audio_mnist --trial 1a2b3_00001 a.wav b.flac --render figs/
    python predict.py --experiment ray_results/audio_mnist --best --export learned/
    python predict.py --experiment ray_results/audio_mnist --best --onnx exported/   # then inference.onnx_predict

The trial's best weights (``best_model.pt``) and config come from its final checkpoint. Each file is read as
the trial's corpus read its clips (mono, the trial's sample rate, its clip length and padding), cut into
the trial's segments and aggregated as the trial's test was. Every problem is one line on stderr: a file
that cannot be read is skipped; the exit status is 1 when nothing could be predicted, 2 for a problem
that stops everything (no experiment, no finished trial, synthetic data, bad arguments).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "predict.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", metavar="FILES_OR_FOLDERS",
                        help="audio files (any format soundfile reads) and folders (searched recursively for "
                             ".wav/.flac/.ogg/.mp3)")
    parser.add_argument("--experiment", required=True, help="the experiment folder <storage>/<name> (path or URI)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--trial", default=None, help="the trial id (or its folder name) to predict with")
    which.add_argument("--best", action="store_true",
                       help="the finished trial with the highest best_valid_acc (validation accuracy of its "
                            "best_model.pt weights); without --trial/--best: the only finished trial")
    parser.add_argument("--out", default="predictions.csv", help="the CSV written (default predictions.csv)")
    parser.add_argument("--top_k", type=int, default=3, help="classes listed per file, most probable first")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--render", default=None, metavar="DIR",
                        help="write DIR/<file>.png (initial vs trained front-end output) and DIR/frontend.png")
    parser.add_argument("--export", default=None, metavar="DIR",
                        help="write DIR/frontend.npz and DIR/frontend.json (the learned front-end)")
    parser.add_argument("--onnx", default=None, metavar="DIR",
                        help="write DIR/model.onnx (front-end and head, one graph), DIR/model.int8.onnx and "
                             "DIR/model.json; classify with python -m inference.onnx_predict DIR/model.onnx FILES")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top_k={args.top_k}: give at least 1")
    if not args.inputs and args.export is None and args.render is None and args.onnx is None:
        parser.error("give audio files or folders to predict, or --export DIR / --render DIR / --onnx DIR")
    return args


def problem(message: str) -> None:
    """One line on stderr."""
    print(f"{PROG}: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch

    from inference.audio import find_audio
    from inference.checkpoint import PredictError, build_initial, build_trained, load_trial
    from inference.export import export_frontend, learned_values
    from inference.predict import chunked, classify, prediction_rows
    from inference.render import render_clip, render_learned
    from training.trial import cuda_unusable_reason

    if args.device == "cuda" and (reason := cuda_unusable_reason()) is not None:
        problem(f"--device cuda: {reason}; or predict on the CPU (--device cpu, the default)")
        return 2
    try:
        trial = load_trial(args.experiment, args.trial, args.best)
        if trial.config["classifier"] is not None:  # a scikit-learn head on embeddings: no network to build
            return _predict_transfer(args, trial)
        model = build_trained(trial, args.device)
        initial = build_initial(trial, args.device) if args.render else None
    except PredictError as err:
        problem(err)
        return 2
    acc = trial.metrics.get("best_valid_acc")
    print(f"trial {trial.trial_id} of {trial.experiment} ({trial.config['frontend']}, {trial.config['model_name']}; "
          f"best_valid_acc {acc}): {trial.sample_rate} Hz, {trial.n_points} samples per clip, "
          f"{trial.n_segments} segment(s), {len(trial.class_names)} classes")

    render_dir = Path(args.render) if args.render else None
    if render_dir is not None:
        rate = trial.sample_rate
        path = render_learned(render_dir / "frontend.png", trial, learned_values(initial.frontend, rate),
                              learned_values(model.frontend, rate))
        print(f"wrote {path}")
    if args.export is not None:
        npz, js = export_frontend(trial, model.frontend, args.export)
        print(f"wrote {npz} and {js}")
    if args.onnx is not None:
        from inference.onnx_export import export_dir

        try:
            written = export_dir(trial, args.onnx, model.cpu())
        except PredictError as err:  # a front-end with no ONNX form
            problem(err)
            return 2
        model.to(args.device)
        print(f"wrote {written['onnx']}, {written['int8']} and {written['meta']}")
    if not args.inputs:
        return 0

    files, problems = find_audio(args.inputs)
    for line in problems:
        problem(line)

    tables, names = [], set()
    batch_size = int(trial.config["batch_size"])
    # batch_size clips at a time: the segment batches are then the ones the trial's test ran
    for chunk in chunked(_clips(files, trial), batch_size):
        paths = [str(p) for p, _ in chunk]
        x = torch.from_numpy(np.stack([c for _, c in chunk]))
        mean_logits, votes = classify(model, x, trial.segment_length, batch_size, args.device, trial.segment_hop)
        table = prediction_rows(paths, torch.softmax(mean_logits.double(), dim=1).numpy(), votes.numpy(),
                                trial.class_names, args.top_k, trial.n_segments > 1)
        tables.append(table)
        for (path, clip), (_, row) in zip(chunk, table.iterrows()):
            if render_dir is not None:
                stem = _unique(Path(path).stem, names)
                title = f"{path}: predicted {row['prediction']} ({row['top1_prob']:.2f})"
                render_clip(render_dir / f"{stem}.png", title, clip, trial, initial, model)
    return _write(tables, args, render_dir)


def _clips(files, trial):
    """``(path, clip)`` of each file as the trial's corpus read its clips; an unreadable file is one line, skipped."""
    from inference.audio import BadAudio, read_clip

    for path in files:
        try:
            yield path, read_clip(path, trial.sample_rate, trial.n_points, trial.padding, trial.float16)
        except BadAudio as err:
            problem(f"skipped {path}: {err}; give a file soundfile can decode (.wav/.flac/.ogg/.mp3)")


def _write(tables: list, args, render_dir: Path | None) -> int:
    """The CSV of every file's row; exit status 1 when there is none."""
    import pandas as pd

    if not tables:
        problem(f"nothing predicted: none of the {len(args.inputs)} input(s) gave a readable audio file")
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = pd.concat(tables, ignore_index=True)
    result.to_csv(out, index=False)
    print(f"wrote {len(result)} prediction(s) to {out}" + (f" and {len(result)} PNG(s) to {render_dir}"
                                                           if render_dir is not None else ""))
    return 0


def _predict_transfer(args, trial) -> int:
    """predict.py for a transfer trial: its fitted head (``head.pkl``) on each file's embedding rows."""
    import pickle

    import numpy as np

    from inference.audio import find_audio
    from inference.checkpoint import PredictError, read_checkpoint_file
    from inference.predict import chunked, classify_embedded, prediction_rows
    from transfer.features import EMBEDDERS

    cfg = trial.config
    if cfg["dataset_name"] == "embeddings":
        raise PredictError(f"trial {trial.trial_id} was fitted on precomputed embeddings: it has no embedder to read "
                           "audio with; choose a trial that embedded audio itself (embedding=mfcc, musicnn, ...)")
    if args.render is not None or args.export is not None or args.onnx is not None:
        raise PredictError(f"trial {trial.trial_id} is a scikit-learn head ({cfg['classifier']}) on {cfg['embedding']} "
                           "embeddings: it has no front-end to --render, --export or --onnx; predict files only")
    saved = read_checkpoint_file(trial.checkpoint_dir, "head.pkl")
    if saved is None:
        raise PredictError(f"trial {trial.trial_id}'s checkpoint {trial.checkpoint_dir} has no head.pkl; rerun main.py")
    pipeline = pickle.loads(saved)
    embedder = EMBEDDERS.get(cfg["embedding"])
    print(f"trial {trial.trial_id} of {trial.experiment} ({cfg['classifier']} on {cfg['embedding']}; best_valid_acc "
          f"{trial.metrics.get('best_valid_acc')}): {trial.sample_rate} Hz, {trial.n_points} samples per clip, "
          f"{len(trial.class_names)} classes")
    files, problems = find_audio(args.inputs)
    for line in problems:
        problem(line)
    tables = []
    for chunk in chunked(_clips(files, trial), 64):
        probs, votes, most = classify_embedded(pipeline, lambda x, rate: embedder.embed(x, rate, cfg),
                                               np.stack([c for _, c in chunk]), trial.sample_rate,
                                               len(trial.class_names))
        tables.append(prediction_rows([str(p) for p, _ in chunk], probs, votes, trial.class_names, args.top_k,
                                      most > 1))
    return _write(tables, args, None)


def _unique(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ... when an earlier file had the same name."""
    name, k = stem, 1
    while name in taken or name == "frontend":
        k += 1
        name = f"{stem}-{k}"
    taken.add(name)
    return name


if __name__ == "__main__":
    sys.exit(main())
