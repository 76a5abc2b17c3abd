"""Classify audio files with an exported ONNX model and onnxruntime alone (docs/predict.md, "Export to ONNX").

    python predict.py --experiment ray_results/audio_mnist --best --onnx exported/
    python -m inference.onnx_predict exported/model.onnx recordings/ --out predictions.csv
    python -m inference.onnx_predict exported/model.int8.onnx a.wav b.flac --threads 1

The model's ``model.json`` (written beside it by ``predict.py --onnx``; ``--meta`` to give another) says how
to read a clip (sample rate, clip length, padding) and cut it into segments. Each file is read as
``predict.py`` reads it (:func:`inference.audio.read_clip`), its segments go through the graph, and the
segment logits are put together per clip as the trial's test did (mean logits: ``prediction``; majority
vote, ties to the larger summed logit: ``vote``). The CSV is ``predict.py``'s. No model code and no
checkpoint is needed: the graph holds the front-end and the head. Problems are one line on stderr; exit
status 1 when nothing could be predicted, 2 for a problem that stops everything.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

PROG = "python -m inference.onnx_predict"
META_KEYS = ("class_names", "sample_rate", "n_points", "segment_length", "n_segments")


def aggregate(logits: np.ndarray, n_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean_logits, votes)`` of clip-major segment logits ``(n_clips * n_segments, n_classes)``, as
    :func:`training.segments.aggregate` decides (a vote tie goes to the tied class with the larger summed
    logit)."""
    per_clip = logits.reshape(-1, n_segments, logits.shape[1]).astype(np.float32)
    summed = per_clip.sum(axis=1)
    ballots = np.zeros_like(summed)
    np.add.at(ballots, (np.repeat(np.arange(len(per_clip)), n_segments), per_clip.argmax(axis=2).ravel()), 1)
    top = ballots == ballots.max(axis=1, keepdims=True)
    votes = np.where(top, summed, -np.inf).argmax(axis=1)
    return summed / n_segments, votes


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def read_meta(path: Path) -> dict:
    meta = json.loads(path.read_text())
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: write it again with predict.py --onnx DIR")
    return meta


def classify_files(sess, meta: dict, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean_logits, votes)`` of ``clips`` ``(n_clips, n_points)`` through the session's graph."""
    from inference.onnx_export import run_segments

    length, n_seg = int(meta["segment_length"]), int(meta["n_segments"])
    hop = int(meta.get("segment_hop", length))  # written by exports since chunks; contiguous before
    windows = np.lib.stride_tricks.sliding_window_view(clips, length, axis=1)[:, ::hop][:, :n_seg]
    segments = windows.reshape(-1, length)  # clip-major, as training.segments.eval_plan
    return aggregate(run_segments(sess, segments, int(meta.get("batch_size", 64))), n_seg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the .onnx file predict.py --onnx wrote (model.onnx or model.int8.onnx)")
    parser.add_argument("inputs", nargs="+", metavar="FILES_OR_FOLDERS", help="audio files and folders")
    parser.add_argument("--meta", default=None, help="its model.json (default: model.json beside the model)")
    parser.add_argument("--out", default="predictions.csv", help="the CSV written (default predictions.csv)")
    parser.add_argument("--top_k", type=int, default=3, help="classes listed per file, most probable first")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: its own)")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top_k={args.top_k}: give at least 1")

    from inference.audio import BadAudio, find_audio, read_clip
    from inference.onnx_export import session
    from inference.predict import prediction_rows

    model = Path(args.model)
    meta_path = Path(args.meta) if args.meta else model.with_name("model.json")
    try:
        if not model.is_file():
            raise ValueError(f"no ONNX model at {model}: write one with predict.py --experiment ... --onnx DIR")
        if not meta_path.is_file():
            raise ValueError(f"no {meta_path} beside the model: give --meta, or write both with predict.py --onnx DIR")
        meta = read_meta(meta_path)
        sess = session(model, args.threads)
    except Exception as err:  # a missing file, bad JSON, a graph onnxruntime refuses
        _problem(err)
        return 2
    files, problems = find_audio(args.inputs)
    for line in problems:
        _problem(line)
    paths, clips = [], []
    for path in files:
        try:
            clips.append(read_clip(path, int(meta["sample_rate"]), int(meta["n_points"]), meta.get("padding", "end"),
                                   bool(meta.get("float16", False))))
            paths.append(str(path))
        except BadAudio as err:
            _problem(f"skipped {path}: {err}; give a file soundfile can decode (.wav/.flac/.ogg/.mp3)")
    if not clips:
        _problem(f"nothing predicted: none of the {len(args.inputs)} input(s) gave a readable audio file")
        return 1
    mean_logits, votes = classify_files(sess, meta, np.stack(clips))
    table = prediction_rows(paths, softmax(mean_logits), votes, meta["class_names"], args.top_k,
                            int(meta["n_segments"]) > 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"wrote {len(table)} prediction(s) to {out}")
    return 0


def _problem(message) -> None:
    print(f"{PROG}: {' '.join(str(message).split())}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
