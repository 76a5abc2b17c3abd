"""The esc50, esc50_folds and audiomnist60 grids end to end on small fixtures: main.py (Ray Tune), then
produce_figures.py (Tables 2 and 3 beside the published numbers), every table cell recomputed from the trial
folders by tests/independent.py."""
import json

import pandas as pd

from tests.fixtures_audiomnist import make_audiomnist
from tests.fixtures_esc50 import make_esc50
from tests.independent import assert_tables
from tests.test_music_tune import figures
from tests.inprocess import main_py
from tests.test_tune import trial_dirs


def test_esc50_grids_and_figures(root, tmp_path):
    data = make_esc50(tmp_path / "esc50", rows=range(0, 2000, 10))  # 200 of the 2,000 clips: 1,800 missing
    common = ["--num_cpus=2", "--max_epochs=1", f"--ray_root_dir={tmp_path}/rr", f"--data_dir={data}",
              "--set", "clip_seconds=0.25", "--set", "n_mels=16", "--set", f"cache_dir={tmp_path}/cache"]
    run = main_py(root, "--name=esc50", *common)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "6 trials finished, 0 unfinished, 0 errored" in run.stdout
    dirs = trial_dirs(tmp_path / "rr" / "esc50")
    configs = [json.loads((d / "params.json").read_text()) for d in dirs]
    assert {(c["model_name"], c["loss"], c["protocol"], c["batch_size"]) for c in configs} == {("cnn6", "bce", "dmel", 32)}
    assert sorted((c["trainable"], c["init_window_ms"]) for c in configs) == sorted(
        (t, ms) for t in (True, False) for ms in (10.0, 35.0, 300.0))
    last = [pd.read_csv(d / "progress.csv").iloc[-1] for d in dirs]
    assert all(row["n_missing"] == 1800 and 0 <= row["test_accuracy"] <= 1 for row in last)
    assert all(0 < row["loss"] < 1.5 for row in last)  # BCE per class, near ln 2 (CE over 50 classes: near 3.9)

    folds = main_py(root, "--name=esc50_folds", *common, "--set", "fold=[1,2]", "--set", "init_window_ms=[35.0]")
    assert folds.returncode == 0, folds.stdout[-4000:] + folds.stderr[-4000:]
    assert "4 trials finished, 0 unfinished, 0 errored" in folds.stdout

    figs = figures(root, tmp_path)
    assert figs.returncode == 0, figs.stdout[-3000:] + figs.stderr[-3000:]
    for name in ("figures/test_esc50.pdf", "figures/test_esc50.png", "figures/lambda_curves_esc50.pdf",
                 "figures/test_esc50_folds.pdf", "tables/test_esc50.md", "tables/test_esc50.tex",
                 "tables/test_esc50_folds.md"):
        assert (tmp_path / "results" / name).stat().st_size > 0, name
    table = (tmp_path / "results/tables/test_esc50.md").read_text()
    for cell in ("| cnn6 ", "87.3 ± 1.0", "84.2 ± 1.2", "(117, 153)", "1/1"):
        assert cell in table, cell
    assert "2/2 (2 folds)" in (tmp_path / "results/tables/test_esc50_folds.md").read_text()
    for name in ("esc50", "esc50_folds"):  # every cell, recomputed from the trial folders
        assert_tables(tmp_path / "rr", tmp_path / "results/tables", name)


def test_audiomnist60_grid_and_figures(root, tmp_path):
    data = make_audiomnist(tmp_path / "audiomnist60")  # 60 speakers x 10 digits x 1 take
    run = main_py(root, "--name=audiomnist60", "--num_cpus=2", "--max_epochs=1", f"--ray_root_dir={tmp_path}/rr",
                  f"--data_dir={data}", "--set", "clip_seconds=0.25", "--set", "n_mels=32",
                  "--set", f"cache_dir={tmp_path}/cache")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "6 trials finished, 0 unfinished, 0 errored" in run.stdout
    dirs = trial_dirs(tmp_path / "rr" / "audiomnist60")
    configs = [json.loads((d / "params.json").read_text()) for d in dirs]
    assert {c["dataset_name"] for c in configs} == {"audiomnist60"}
    assert {c["model_name"] for c in configs} == {"mel_linear_net"}  # LNet, the paper's Table 3 model
    splits = json.loads(next((tmp_path / "rr" / "audiomnist60").glob("*/checkpoint_*/splits.json")).read_text())
    assert (len(splits["train"]), len(splits["valid"]), len(splits["test"])) == (360, 120, 120)

    figs = figures(root, tmp_path)
    assert figs.returncode == 0, figs.stdout[-3000:] + figs.stderr[-3000:]
    for name in ("figures/test_audiomnist60.pdf", "figures/lambda_curves_audiomnist60.pdf",
                 "tables/test_audiomnist60.md"):
        assert (tmp_path / "results" / name).stat().st_size > 0, name
    table = (tmp_path / "results/tables/test_audiomnist60.md").read_text()
    for cell in ("| mel_linear_net ", "94.9 ± 1.0", "(516, 608)"):
        assert cell in table, cell
    assert "audio_mnist:" in figs.stdout  # the FSDD experiment is a different one, skipped here
    assert_tables(tmp_path / "rr", tmp_path / "results/tables", "audiomnist60")  # every cell, from the trials
