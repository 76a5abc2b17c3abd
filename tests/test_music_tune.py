"""The gtzan and fma grids end to end on small fixtures: main.py (Ray Tune) then produce_figures.py, whose
tables (both splits) tests/independent.py recomputes cell by cell from the trial folders."""
import json

import pandas as pd

from tests.fixtures_fma import make_fma
from tests.fixtures_gtzan import make_gtzan
from tests.independent import assert_tables
from tests.inprocess import main_py, produce_figures
from tests.test_tune import trial_dirs


def figures(root, tmp_path, split="test"):
    return produce_figures(root, f"--split={split}", f"--ray_root_dir={tmp_path}/rr", f"--results_dir={tmp_path}/results")


def assert_both_splits(root, tmp_path, name):
    """Every cell of the test table (already written) and of the valid one (written here, 4 CPU-seconds)."""
    assert_tables(tmp_path / "rr", tmp_path / "results/tables", name, "test")
    valid = figures(root, tmp_path, "valid")
    assert valid.returncode == 0, valid.stdout[-3000:] + valid.stderr[-3000:]
    assert_tables(tmp_path / "rr", tmp_path / "results/tables", name, "valid")


def test_gtzan_grid_and_figures(root, tmp_path):
    data = make_gtzan(tmp_path / "gtzan", per_split=1)
    run = main_py(root, "--name=gtzan", "--num_cpus=2", "--max_epochs=1", f"--ray_root_dir={tmp_path}/rr",
                  f"--data_dir={data}", "--set", "sample_rate=8000", "--set", "clip_seconds=1.2",
                  "--set", "n_mels=32", "--set", "batch_size=8", "--set", f"cache_dir={tmp_path}/cache",
                  "--set", "model_name=mel_conv_net")  # plumbing: a small head, not ResNet18
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "18 trials finished, 0 unfinished, 0 errored" in run.stdout
    dirs = trial_dirs(tmp_path / "rr" / "gtzan")
    last = [pd.read_csv(d / "progress.csv").iloc[-1] for d in dirs]
    assert all(row["n_unreadable"] == 1 for row in last)  # jazz.00054.wav, skipped and counted
    ada = [row for row in last if "frontend_window_mse" in row]  # each front-end reports its own drift
    assert len(ada) == 4 and all(row["frontend_window_mse"] > 0 for row in ada)
    configs = [json.loads((d / "params.json").read_text()) for d in dirs]
    assert sorted({c["variant"]["frontend"] for c in configs}) == ["adastft", "gaussian", "torchaudio_mel"]
    assert sorted({c["split_parts"] for c in configs}) == [1, 12]

    figs = figures(root, tmp_path)
    assert figs.returncode == 0, figs.stdout[-3000:] + figs.stderr[-3000:]
    for name in ("figures/test_gtzan.pdf", "figures/test_gtzan.png", "figures/adastft_windows_gtzan.pdf",
                 "figures/dmel_windows_gtzan.pdf", "figures/confusion_gtzan.pdf", "tables/test_gtzan.md"):
        assert (tmp_path / "results" / name).stat().st_size > 0, name
    table = (tmp_path / "results/tables/test_gtzan.md").read_text()
    for label in ("DMEL trainable", "DMEL fixed", "Ada-STFT window", "Ada-STFT window+kernels", "fixed mel", "77.6"):
        assert label in table
    assert_both_splits(root, tmp_path, "gtzan")


def test_fma_grid_and_figures(root, tmp_path):
    data = make_fma(tmp_path / "fma").root
    segments = ('variant_segments=[{"segment_seconds": 0.5, "batch_size": 8}, '
                '{"segment_seconds": 2.0, "batch_size": 4}]')
    run = main_py(root, "--name=fma", "--num_cpus=2", "--max_epochs=1", f"--ray_root_dir={tmp_path}/rr",
                  f"--data_dir={data}", "--set", "sample_rate=8000", "--set", "clip_seconds=2.0",
                  "--set", "n_mels=32", "--set", segments, "--set", f"cache_dir={tmp_path}/cache")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "14 trials finished, 0 unfinished, 0 errored" in run.stdout
    dirs = trial_dirs(tmp_path / "rr" / "fma")
    last = [pd.read_csv(d / "progress.csv").iloc[-1] for d in dirs]
    assert all(row["n_unreadable"] == 4 and row["n_missing"] == 1 for row in last)
    assert all(0 <= row["test_macro_f1"] <= 1 for row in last)
    cms = list((tmp_path / "rr" / "fma").glob("*/checkpoint_*/confusion_matrix.csv"))
    assert len(cms) == 14

    figs = figures(root, tmp_path)
    assert figs.returncode == 0, figs.stdout[-3000:] + figs.stderr[-3000:]
    for name in ("figures/test_fma.pdf", "figures/confusion_fma.pdf", "tables/test_fma.md"):
        assert (tmp_path / "results" / name).stat().st_size > 0, name
    assert "60.0" in (tmp_path / "results/tables/test_fma.md").read_text()
    assert_both_splits(root, tmp_path, "fma")
