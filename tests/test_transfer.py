"""Transfer trials: scikit-learn heads on embedding rows (transfer/), the precomputed-embeddings corpus
(corpora/embeddings.py), the per-class train subsets, the embedding cache, and the ``transfer`` grid through
Ray Tune with its figure. Expected values are computed here with scikit-learn and numpy directly."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from corpora.embeddings import load_rows as read_embedding_files
from corpora.splits import per_class_subset
from tests.fixtures import make_fsdd
from tests.inprocess import main_py, produce_figures
from tests.test_predict import predict as predict_py
from training.config import resolve_config
from training.trial import run_trial
from transfer.cache import embed_splits
from transfer.features import EMBEDDERS, missing_files, patches
from transfer.heads import class_scores, clip_decisions
from tuning.validate import check_config

GENRES = ("blues", "jazz", "rock")


def test_per_class_subsets_are_stratified_seeded_and_nested():
    labels = np.repeat(np.arange(4), [30, 30, 30, 3])  # class 3 has fewer than asked
    for n in (1, 2, 5, 10):
        kept = per_class_subset(labels, n, seed=7)
        assert list(np.bincount(labels[kept], minlength=4)) == [n, n, n, min(n, 3)]
        assert np.array_equal(kept, per_class_subset(labels, n, seed=7))
    small, large = per_class_subset(labels, 2, 7), per_class_subset(labels, 10, 7)
    assert set(small) <= set(large)  # one seed: the curve's subsets are nested
    assert not np.array_equal(per_class_subset(labels, 5, 7), per_class_subset(labels, 5, 8))
    with pytest.raises(ValueError, match="at least 1"):
        per_class_subset(labels, 0, 7)


def test_clip_decisions_vote_and_mean_probability():
    # clip 0: rows predict 2, 1, 1 -> vote 1; clip 1: a 1-1 tie between 0 and 2 -> the recipe's argmax(bincount): 0
    row_pred = np.array([2, 1, 1, 2, 0])
    scores = np.array([[0.1, 0.2, 0.7], [0.2, 0.5, 0.3], [0.3, 0.4, 0.3], [0.0, 0.1, 0.9], [0.6, 0.3, 0.1]])
    clip = np.array([0, 0, 0, 1, 1])
    vote, mean_pred, mean = clip_decisions(row_pred, scores, clip, 2)
    assert list(vote) == [1, 0]
    np.testing.assert_allclose(mean, [scores[:3].mean(0), scores[3:].mean(0)])
    assert list(mean_pred) == [2, 2]  # clip 0: means 0.20, 0.37, 0.43: the mean disagrees with the vote


def test_svm_scores_are_a_softmax_of_its_margins_with_unseen_classes_zero():
    from sklearn.svm import LinearSVC
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4)) + np.repeat([[0, 0, 0, 0], [3, 0, 0, 0], [0, 3, 0, 0]], 10, axis=0)
    y = np.repeat([0, 2, 3], 10)  # class 1 never seen
    pipe = make_pipeline(LinearSVC()).fit(x, y)
    p = class_scores(pipe, x, 4)
    margin = pipe.decision_function(x)
    expected = np.exp(margin) / np.exp(margin).sum(1, keepdims=True)
    np.testing.assert_allclose(p[:, [0, 2, 3]], expected, rtol=1e-10)
    assert np.all(p[:, 1] == 0)


def test_patches_drop_the_tail_and_pad_a_short_clip():
    x = np.arange(10, dtype=np.float32)
    assert patches(x, 2, 2.0, 1.0).tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
    assert patches(x, 2, 1.5).tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert patches(x[:2], 2, 2.0).tolist() == [[0, 1, 0, 0]]
    assert patches(x, 2, None).shape == (1, 10)


def test_mfcc_rows_are_librosa_mfcc_means_and_stds():
    import librosa

    rate = 8000
    x = np.random.default_rng(1).standard_normal(rate).astype(np.float32)
    cfg = resolve_config({"n_mfcc": 13, "patch_seconds": 0.5})
    rows = EMBEDDERS.get("mfcc").embed(x, rate, cfg)
    first = librosa.feature.mfcc(y=x[:4000], sr=rate, n_mfcc=13, n_fft=256, hop_length=80, n_mels=40)
    assert rows.shape == (2, 26)
    np.testing.assert_allclose(rows[0], np.concatenate([first.mean(1), first.std(1)]), rtol=1e-5)


def make_embedding_files(root, n_tracks=(8, 6), patches_per_track=5, dims=6, seed=0):
    """The recipe's layout: training_data_*.npz / evaluation_data_*.npz with X, Y, IDS (``genre/genre.000NN.au``)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(GENRES), dims)) * 2
    for split, n in zip(("training", "evaluation"), n_tracks):
        x, y, ids = [], [], []
        for g, genre in enumerate(GENRES):
            for t in range(n):
                x.append(centres[g] + rng.standard_normal((patches_per_track, dims)) * 1.5)
                y += [g] * patches_per_track
                ids += [f"{genre}/{genre}.{t + 100 * (split == 'evaluation'):05d}.au"] * patches_per_track
        np.savez(root / f"{split}_data_FIXTURE_taggram.npz", X=np.concatenate(x).astype(np.float32),
                 Y=np.array(y), IDS=np.array(ids))
    return root


def test_precomputed_embeddings_follow_the_recipe(tmp_path):
    """valid_share=0 is the recipe's procedure: fit on every training row, predict every test row, one majority
    vote per track, accuracy over tracks; computed here with scikit-learn and pandas."""
    from sklearn.svm import SVC

    make_embedding_files(tmp_path)
    cfg = {"classifier": "svm_rbf", "dataset_name": "embeddings", "embedding": "precomputed", "valid_share": 0.0,
           "data_dir": str(tmp_path), "cache_dir": str(tmp_path / "cache")}
    reports = []
    metrics = run_trial(cfg, lambda m, ckpt: reports.append((m, sorted(p.name for p in Path(ckpt).iterdir()))))
    train, test = (np.load(next(tmp_path.glob(f"{s}_data_*.npz"))) for s in ("training", "evaluation"))
    pred = SVC(C=1, kernel="rbf", gamma="scale").fit(train["X"], train["Y"]).predict(test["X"])
    votes = pd.DataFrame({"id": test["IDS"], "pred": pred, "y": test["Y"]}).groupby("id").agg(
        vote=("pred", lambda p: np.argmax(np.bincount(p))), y=("y", "first"))
    assert metrics["test_accuracy_vote"] == pytest.approx((votes["vote"] == votes["y"]).mean())
    assert metrics["test_accuracy_segment"] == pytest.approx(np.mean(pred == test["Y"]))
    assert np.isnan(metrics["valid_acc"]) and metrics["n_train_clips"] == 24 and metrics["done"]
    assert len(reports) == 1 and {"head.pkl", "predictions.csv", "splits.json", "confusion_matrix.csv"} <= set(reports[0][1])
    rows, names = read_embedding_files(resolve_config({**cfg, "valid_share": 0.25}))
    assert names == list(GENRES)  # from the IDS folders
    assert [len(rows[s].y) for s in ("train", "valid", "test")] == [18, 6, 18]  # 2 of 8 tracks per genre validate
    assert not set(rows["train"].ids) & set(rows["valid"].ids)


def test_precomputed_embeddings_refuse_bad_files_and_configs(tmp_path):
    np.savez(tmp_path / "train.npz", X=np.zeros((3, 2)), Y=np.zeros(3))
    np.savez(tmp_path / "test.npz", X=np.zeros((3, 2)), Y=np.zeros(3), IDS=np.array(["a", "a", "b"]))
    cfg = resolve_config({"classifier": "knn", "dataset_name": "embeddings", "embedding": "precomputed",
                          "data_dir": str(tmp_path)})
    with pytest.raises(ValueError, match="no IDS"):
        read_embedding_files(cfg)
    lines = check_config(resolve_config({"dataset_name": "embeddings", "data_dir": str(tmp_path)}))
    assert any("set classifier" in line for line in lines) and any("embedding=precomputed" in line for line in lines)
    lines = check_config(resolve_config({"classifier": "svm_rbf", "embedding": "precomputed", "gamma": -1}))
    assert any("gamma=-1" in line for line in lines) and any("set dataset_name=embeddings" in line for line in lines)


@pytest.fixture(scope="module")
def fsdd(tmp_path_factory):
    return make_fsdd(tmp_path_factory.mktemp("fsdd"), takes=6)


def test_embedding_cache_is_built_once_and_shared_across_splits(fsdd, tmp_path):
    from corpora import load_splits

    base = {"dataset_name": "audio_mnist", "protocol": "dmel", "n_points": 5500, "data_dir": str(fsdd),
            "embedding": "mfcc", "classifier": "knn", "cache_dir": str(tmp_path)}
    one = resolve_config({**base, "seed": 0})
    rows, _ = embed_splits(load_splits(one), one)
    files = list((tmp_path / "embeddings").glob("*.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    other = resolve_config({**base, "seed": 1})  # another split of the same clips: the same cache file
    rows_other, _ = embed_splits(load_splits(other), other)
    assert list((tmp_path / "embeddings").glob("*.npz")) == files and files[0].stat().st_mtime_ns == stamp
    by_id = {i: rows["train"].x[rows["train"].clip == k] for k, i in enumerate(rows["train"].ids)}
    for k, i in enumerate(rows_other["test"].ids):
        if i in by_id:  # the same clip, the same rows, whichever split it fell in
            np.testing.assert_array_equal(rows_other["test"].x[rows_other["test"].clip == k], by_id[i])
    splits = load_splits(one)
    direct = EMBEDDERS.get("mfcc").embed(splits.x_valid[[0]].numpy()[0], 8000, one)
    np.testing.assert_allclose(rows["valid"].x[rows["valid"].clip == 0], direct, rtol=1e-6)


def test_neural_and_transfer_trials_train_on_the_same_subset(fsdd, tmp_path):
    from corpora import load_splits

    cfg = resolve_config({"dataset_name": "audio_mnist", "protocol": "dmel", "n_points": 5500, "data_dir": str(fsdd),
                          "train_per_class": 2, "seed": 3, "cache_dir": str(tmp_path)})
    neural = load_splits(cfg)
    assert list(torch.bincount(neural.y_train)) == [2] * 10
    out = {}
    run_trial({**cfg, "classifier": "knn", "embedding": "mfcc"}, lambda m, ckpt: out.update(
        json.loads((Path(ckpt) / "splits.json").read_text())))
    assert sorted(out["train"]) == sorted(neural.ids_train)


def test_the_transfer_grid_runs_through_tune_and_draws_its_curve(root, fsdd, tmp_path):
    variants = [{"classifier": "svm_rbf", "standardize_rows": True, "embedding": "mfcc"},
                {"classifier": "logreg", "embedding": "logmel"},
                {"frontend": "gaussian", "trainable": True, "init_window_ms": 25.0}]
    run = main_py(root, "--name=transfer", "--num_samples=2", "--max_epochs=1", f"--data_dir={fsdd}",
                  f"--ray_root_dir={tmp_path}", "--set", f"cache_dir={tmp_path}/cache", "--set", "n_mels=16",
                  "--set", "train_per_class=[1, None]", "--set", f"variant={variants!r}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = [json.loads(p.read_text().splitlines()[-1]) for p in (tmp_path / "transfer").glob("*/result.json")]
    assert len(results) == 12 and all(r["done"] and 0 <= r["test_accuracy"] <= 1 for r in results)
    transfer = [r for r in results if r["config"]["variant"].get("classifier")]
    assert len(transfer) == 8
    assert {r["n_train_clips"] for r in transfer if r["config"]["train_per_class"] == 1} == {10}
    assert {r["n_train_subset"] for r in results if r not in transfer and r["config"]["train_per_class"] == 1} == {10}
    assert len({r["n_train_clips"] for r in transfer if r["config"]["train_per_class"] is None} - {10}) == 1
    drawn = produce_figures(root, "--split=test", f"--ray_root_dir={tmp_path}", f"--results_dir={tmp_path}/results")
    assert drawn.returncode == 0, drawn.stdout[-3000:] + drawn.stderr[-3000:]
    assert (tmp_path / "results" / "figures" / "test_transfer.png").exists()
    # predict.py with a transfer trial: its head on each file's rows gives the trial's own test decisions
    trial = next(p for p in (tmp_path / "transfer").glob("*/result.json")
                 if json.loads(p.read_text().splitlines()[-1])["config"]["variant"].get("embedding") == "mfcc")
    saved = pd.read_csv(sorted(trial.parent.glob("checkpoint_*"))[-1] / "predictions.csv", dtype={"id": str})
    files = [str(fsdd / "recordings" / f"{i}.wav") for i in saved["id"]]
    out = tmp_path / "predicted.csv"
    predicted = predict_py("--experiment", str(tmp_path / "transfer"), "--trial", trial.parent.name, *files,
                           "--out", str(out))
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    rows = pd.read_csv(out)
    classes = [str(d) for d in range(10)]
    assert list(rows["prediction"].astype(str)) == [classes[k] for k in saved["prediction"]]
    refused = predict_py("--experiment", str(tmp_path / "transfer"), "--trial", trial.parent.name, "--export", str(tmp_path))
    assert refused.returncode == 2 and "no front-end" in refused.stderr
    table = json.loads((tmp_path / "results" / "tables" / "test_transfer.json").read_text())
    text = json.dumps(table)
    assert "MFCC stats + RBF SVM" in text and "log-mel stats + logistic regression" in text and "(2)" in text
    assert table["columns"] == ["method", "1", "UAR 1", "all", "UAR all", "s/trial (mean)", "embedding, once (s)",
                                "learnable front-end params", "MFLOP/input (front-end + head)", "CPU ms/input"]
    by_method = {row[0]: dict(zip(table["columns"], row)) for row in table["rows"]}
    uar = [r["test_uar"] for r in transfer if r["config"]["variant"]["classifier"] == "svm_rbf"
           and r["config"]["train_per_class"] is None]  # one mean over the seeds, n = 2
    assert by_method["MFCC stats + RBF SVM"]["UAR all"].startswith(f"{100 * np.mean(uar):.1f} ± ")
    assert by_method["MFCC stats + RBF SVM"]["learnable front-end params"] == "-"  # a scikit-learn head: none
    assert by_method["DMEL trainable (from scratch)"]["learnable front-end params"] == "1"


def test_the_embedding_heads_grid_scores_every_head_on_precomputed_files(root, tmp_path):
    data = make_embedding_files(tmp_path / "emb" if (tmp_path / "emb").mkdir() is None else None)
    run = main_py(root, "--name=embedding_heads", "--num_samples=1", f"--data_dir={data}", f"--ray_root_dir={tmp_path}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    drawn = produce_figures(root, "--split=test", f"--ray_root_dir={tmp_path}", f"--results_dir={tmp_path}/results")
    assert drawn.returncode == 0, drawn.stdout[-3000:] + drawn.stderr[-3000:]
    rows = json.loads((tmp_path / "results" / "tables" / "test_embedding_heads.json").read_text())
    text = json.dumps(rows)
    assert all(name in text for name in ("linear SVM", "RBF SVM", "logistic regression", "k-NN (cosine)", "MLP"))
    assert text.count("1/1") == 10
    assert "mean prob. UAR %" in rows["columns"] and rows["columns"][-3:] == [
        "learnable front-end params", "MFLOP/input (front-end + head)", "CPU ms/input"]
    assert {cell for row in rows["rows"] for cell in row[-3:]} == {"-"}  # scikit-learn heads record no statistics


class _BandEnergies(torch.nn.Module):
    """A stand-in for a user's embedding model: (patches, samples) -> {"energy": (patches, 4), "mean": (patches, 1)}."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        spec = torch.fft.rfft(x).abs() ** 2
        bands = torch.stack([b.mean(dim=1) for b in spec.chunk(4, dim=1)], dim=1)
        return {"energy": torch.log(bands + 1e-6), "mean": x.mean(dim=1, keepdim=True)}


@pytest.mark.parametrize("saved", ["torch.export", "TorchScript"])
def test_a_saved_model_embeds_patches_at_its_own_rate(tmp_path, saved):
    import soxr

    if saved == "torch.export":
        path = tmp_path / "bands.pt2"
        example = torch.zeros(4, 4000)
        torch.export.save(torch.export.export(_BandEnergies(), (example,),
                                              dynamic_shapes=({0: torch.export.Dim("patches")},)), str(path))
    else:
        path = tmp_path / "bands.pt"
        torch.jit.script(_BandEnergies()).save(str(path))
    cfg = resolve_config({"classifier": "knn", "embedding": "torch", "embedding_model": str(path),
                          "embedding_layer": "energy", "embedding_sample_rate": 16000, "patch_seconds": 0.25})
    x = np.random.default_rng(2).standard_normal(8000).astype(np.float32)  # 1 s at 8 kHz
    rows = EMBEDDERS.get("torch").embed(x, 8000, cfg)
    at_16k = soxr.resample(x, 8000, 16000).astype(np.float32)
    expected = _BandEnergies()(torch.from_numpy(at_16k[:16000].reshape(4, 4000))).get("energy").numpy()
    np.testing.assert_allclose(rows, expected, rtol=1e-5, atol=1e-5)
    assert check_config(cfg) == []
    with pytest.raises(KeyError, match="gives layers"):
        EMBEDDERS.get("torch").embed(x, 8000, {**cfg, "embedding_layer": "penultimate"})
    missing = missing_files([{**cfg, "embedding_model": str(tmp_path / "absent.pt")}])
    assert len(missing) == 1 and "no such file" in missing[0]


def test_missing_musicnn_weights_are_one_line_before_ray(root, tmp_path):
    run = main_py(root, "--name=transfer", "--num_samples=1", "--max_epochs=1", f"--data_dir={tmp_path}",
                  f"--ray_root_dir={tmp_path}", "--set", f"embedding_dir={tmp_path / 'none'}")
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if "musicnn" in line]
    assert len(lines) == 1 and "sh download_data.sh musicnn" in lines[0], run.stderr
    assert not (tmp_path / "transfer").exists()
