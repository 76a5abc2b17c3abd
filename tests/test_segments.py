"""Segment plans, reading segments from tensors and caches, per-clip aggregation, clip metrics."""
import numpy as np
import pytest
import torch

from corpora.splits import Rows
from training.metrics import class_metrics, confusion_table
from training.segments import aggregate, eval_plan, n_segments, read_segments, segment_geometry, train_plan


def cfg(**kw):
    return {"split_parts": 1, "segment_seconds": None, "clip_seconds": 30.0, **kw}


def test_n_segments():
    assert n_segments(cfg(split_parts=12)) == 12
    assert n_segments(cfg(segment_seconds=3.0)) == 10
    assert n_segments(cfg(segment_seconds=30.0)) == 1
    with pytest.raises(ValueError, match="does not divide"):
        n_segments(cfg(segment_seconds=7.0))
    with pytest.raises(ValueError, match="disagree"):
        n_segments(cfg(split_parts=4, segment_seconds=3.0))


def test_plans_cover_clips():
    clips, offsets = eval_plan(3, 12, 4)
    assert clips.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and offsets.tolist() == [0, 4, 8] * 3
    gen = torch.Generator().manual_seed(0)
    clips, offsets = train_plan(3, 12, 4, "all", gen)
    assert sorted(zip(clips.tolist(), offsets.tolist())) == sorted(zip(*[t.tolist() for t in eval_plan(3, 12, 4)]))
    clips, offsets = train_plan(5, 12, 4, "random_crop", gen)
    assert sorted(clips.tolist()) == list(range(5)) and ((offsets >= 0) & (offsets <= 8)).all()
    with pytest.raises(ValueError, match="train_segments"):
        train_plan(3, 12, 4, "every", gen)


def chunk_cfg(**kw):
    return cfg(**{"dataset_name": "audio_mnist", "chunk_seconds": None, "chunk_hop_seconds": None, **kw})


def test_chunks_of_a_length_every_hop():
    # DeepSpectrumLite's chunks: int(seconds x rate) samples, every int(hop x rate), as many as fit
    assert segment_geometry(chunk_cfg(chunk_seconds=0.4, chunk_hop_seconds=0.2), 5500, 8000) == (3200, 1600)
    assert segment_geometry(chunk_cfg(chunk_seconds=0.25), 5500, 8000) == (2000, 2000)
    assert segment_geometry(chunk_cfg(split_parts=2), 5500, 8000) == (2750, 2750)
    clips, offsets = eval_plan(2, 5500, 3200, 1600)
    assert clips.tolist() == [0, 0, 1, 1] and offsets.tolist() == [0, 1600] * 2  # a third would end at 6400
    clips, offsets = eval_plan(1, 10, 4, 3)
    assert offsets.tolist() == [0, 3, 6]
    clips, offsets = train_plan(1, 10, 4, "all", torch.Generator().manual_seed(0), 3)
    assert sorted(offsets.tolist()) == [0, 3, 6]
    for bad, match in [(dict(chunk_seconds=1.0), "a chunk must fit in the clip"),
                       (dict(chunk_seconds=0.2, split_parts=2), "set only one"),
                       (dict(chunk_hop_seconds=0.1), "needs chunk_seconds"),
                       (dict(chunk_seconds=0.2, chunk_hop_seconds=1e-5), "under one sample")]:
        with pytest.raises(ValueError, match=match):
            segment_geometry(chunk_cfg(**bad), 5500, 8000)


def test_onnx_predict_cuts_the_chunks_the_trial_evaluated():
    from inference.onnx_predict import classify_files

    clips = np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32)
    index, offsets = eval_plan(3, 50, 20, 7)
    expected = read_segments(torch.from_numpy(clips), index, offsets, 20).numpy()
    seen = []

    class Session:  # what onnxruntime is given, logits from the segment's first two samples
        def get_inputs(self):
            return [type("Input", (), {"name": "waveform"})()]

        def run(self, _, feeds):
            seen.append(feeds["waveform"])
            return [feeds["waveform"][:, :2]]

    classify_files(Session(), {"segment_length": 20, "segment_hop": 7, "n_segments": 5, "batch_size": 64}, clips)
    np.testing.assert_array_equal(np.concatenate(seen), expected)


def test_read_segments_tensor_and_cache_agree():
    audio = np.arange(40, dtype=np.float16).reshape(4, 10)
    rows = Rows(audio, [3, 1])  # clip 0 is cache row 3, clip 1 is row 1
    tensor = torch.from_numpy(audio[[3, 1]].astype(np.float32))
    clips, offsets = torch.tensor([1, 0, 1]), torch.tensor([0, 5, 5])
    expected = torch.tensor([[10, 11, 12, 13, 14], [35, 36, 37, 38, 39], [15, 16, 17, 18, 19]], dtype=torch.float32)
    assert torch.equal(read_segments(rows, clips, offsets, 5), expected)
    assert torch.equal(read_segments(tensor, clips, offsets, 5), expected)
    assert torch.equal(rows[np.array([1, 0])], tensor[[1, 0]])


def test_aggregate_groups_by_clip_index_not_order():
    # three clips, segments arrive interleaved and shuffled (as a loader might deliver them)
    logits = torch.tensor([[0.0, 5.0], [3.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 0.5], [0.0, 4.0], [1.0, 0.0]])
    clips = torch.tensor([2, 0, 0, 1, 0, 2, 1])
    mean, votes = aggregate(logits, clips, 3)
    assert torch.allclose(mean, torch.tensor([[1.0, 0.5], [1.5, 0.0], [0.0, 4.5]]))
    # clip 0: votes class 0 once, class 1 twice -> 1 (though its mean logits favour 0)
    assert votes.tolist() == [1, 0, 1]
    assert mean.argmax(1).tolist() == [0, 0, 1]


def test_vote_tie_goes_to_larger_summed_logit():
    logits = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    _, votes = aggregate(logits, torch.tensor([0, 0]), 1)
    assert votes.tolist() == [1]


def test_class_metrics_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    m = class_metrics(labels, pred, ["a", "b", "c", "d"])
    # per class (precision, recall): a (1/2, 1/2), b (2/3, 1), c (1, 1/2); d absent
    f1 = [0.5, 0.8, 2 / 3]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert [m[f"recall/{c}"] for c in "abc"] == pytest.approx([0.5, 1.0, 0.5])
    assert np.isnan(m["recall/d"])
    cm = confusion_table(labels, pred, ["a", "b", "c", "d"])
    assert cm.loc["a"].tolist() == [1, 1, 0, 0] and cm.loc["c"].tolist() == [1, 0, 1, 0] and cm.values.sum() == 6


@pytest.mark.parametrize("seed", range(5))
def test_class_metrics_equal_scikit_learn(seed):
    """Random labels over 7 classes, some absent from the labels, some never predicted."""
    from sklearn.metrics import confusion_matrix, f1_score, recall_score

    rng = np.random.default_rng(seed)
    labels, pred = rng.choice([0, 1, 2, 4, 5], size=200), rng.choice([0, 1, 3, 4, 6], size=200)
    names = list("abcdefg")
    m = class_metrics(labels, pred, names)
    present = np.unique(labels)
    assert m["macro_f1"] == pytest.approx(f1_score(labels, pred, labels=present, average="macro", zero_division=0))
    recall = recall_score(labels, pred, labels=np.arange(7), average=None, zero_division=0)
    for k, name in enumerate(names):
        assert np.isnan(m[f"recall/{name}"]) if k not in present else m[f"recall/{name}"] == pytest.approx(recall[k])
    assert (confusion_table(labels, pred, names).values == confusion_matrix(labels, pred, labels=np.arange(7))).all()


def test_a_chunked_trial_decides_its_test_clips_as_classify_does(tmp_path):
    """A trial on overlapping chunks (0.4 s every 0.2 s: two per FSDD clip) reports per-clip decisions that
    ``inference.predict.classify`` (predict.py's) reproduces from its best weights."""
    import json

    import pandas as pd

    from corpora import load_splits
    from inference.predict import classify
    from models.classifiers import build_model
    from tests.fixtures import make_fsdd
    from training.config import resolve_config
    from training.trial import run_trial

    data = make_fsdd(tmp_path / "fsdd", takes=3)
    cfg = resolve_config({"dataset_name": "audio_mnist", "data_dir": str(data), "cache_dir": str(tmp_path / "cache"),
                          "frontend": "torchaudio_mel", "model_name": "mel_linear_net", "n_mels": 16, "hop_length": 80,
                          "chunk_seconds": 0.4, "chunk_hop_seconds": 0.2, "max_epochs": 2, "lr_model": 0.01, "n_points": 5500,
                          "train_segments": "all"})
    saved = {}

    def report(metrics, ckpt):
        if metrics["done"]:
            saved["predictions"] = pd.read_csv(f"{ckpt}/predictions.csv")
            saved["weights"] = torch.load(f"{ckpt}/best_model.pt", weights_only=True)
            saved["classes"] = json.loads(open(f"{ckpt}/classes.json").read())

    final = run_trial(cfg, report)
    assert final["test_accuracy_segment"] == final["test_accuracy_segment"]  # a number, not NaN
    model = build_model(cfg, 3200, 10, 8000)
    model.load_state_dict(saved["weights"])
    splits = load_splits(cfg)
    mean_logits, votes = classify(model, splits.x_test, 3200, 128, "cpu", hop=1600)
    assert mean_logits.argmax(1).tolist() == saved["predictions"]["prediction"].tolist()
    assert votes.tolist() == saved["predictions"]["vote"].tolist()
