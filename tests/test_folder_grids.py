"""The user's own audio through the shipped grids: ``--set dataset_name=folder --data_dir=...`` runs the
front-end bench (every registered front-end), DMEL trainable vs fixed and the window search on a generated
folder of class sub-folders (WAV and FLAC at 16 and 44.1 kHz, one stereo), resampled to the grids' 8 kHz."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from models.registry import FRONTENDS
from tests.inprocess import main_py, produce_figures

CLASSES = {"low": 300.0, "high": 1500.0}


@pytest.fixture(scope="module")
def my_audio(tmp_path_factory):
    """Ten 0.5 s tones per class, every other one FLAC at 44.1 kHz (stereo), the rest 16 kHz WAV."""
    root = tmp_path_factory.mktemp("my_audio")
    rng = np.random.default_rng(0)
    for name, hz in CLASSES.items():
        (root / name).mkdir()
        for k in range(10):
            rate, ending = (44100, "flac") if k % 2 else (16000, "wav")
            t = np.arange(rate // 2) / rate
            x = 0.3 * np.sin(2 * np.pi * hz * (1 + 0.05 * rng.standard_normal()) * t) + 0.05 * rng.standard_normal(t.size)
            sf.write(root / name / f"take{k}.{ending}", np.stack([x, x], 1) if k % 2 else x, rate)
    return root


def finished_frontends(storage, name):
    out = []
    for result in (storage / name).glob("*/result.json"):
        last = json.loads(result.read_text().splitlines()[-1])
        if last.get("done"):
            out.append((last["config"].get("variant", {}).get("frontend", last["config"].get("frontend")),
                        last["n_files"], last["test_accuracy"]))
    return out


@pytest.mark.parametrize("grid", ["frontends", "audio_mnist"])
def test_a_shipped_grid_runs_on_a_folder(root, tmp_path, my_audio, grid):
    run = main_py(root, f"--name={grid}", "--max_epochs=1", f"--data_dir={my_audio}", f"--ray_root_dir={tmp_path}",
                  "--set", "dataset_name=folder", "--set", "clip_seconds=0.5", "--set", f"cache_dir={tmp_path}/cache",
                  "--set", "n_mels=16")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    trials = finished_frontends(tmp_path, grid)
    assert len(trials) == (11 if grid == "frontends" else 6), trials  # the bench's 11 variants; 2 x 3 windows
    if grid == "frontends":
        assert {fe for fe, _, _ in trials} == set(FRONTENDS)
    assert all(files == 20 and 0 <= acc <= 1 for _, files, acc in trials)
    drawn = produce_figures(root, "--split=test", f"--ray_root_dir={tmp_path}", f"--results_dir={tmp_path}/results")
    assert drawn.returncode == 0, drawn.stdout[-3000:] + drawn.stderr[-3000:]
    caption = (tmp_path / "results" / "tables" / f"test_{grid}.md").read_text().splitlines()[0]
    assert caption.startswith(f"folder {my_audio}, test accuracy"), caption  # the table names the data it read


def test_the_window_search_runs_on_a_folder(root, tmp_path, my_audio):
    run = main_py(root, "--name=window_search", "--num_samples=3", "--max_epochs=1", f"--data_dir={my_audio}",
                  f"--ray_root_dir={tmp_path}", "--set", "dataset_name=folder", "--set", "clip_seconds=0.5",
                  "--set", f"cache_dir={tmp_path}/cache", "--set", "n_mels=16")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    search, trainable = (finished_frontends(tmp_path / "window_search", part) for part in ("search", "trainable"))
    assert len(search) == 3 and len(trainable) == 3, (search, trainable)
    assert all(fe == "gaussian" and files == 20 and 0 <= acc <= 1 for fe, files, acc in search + trainable)
    drawn = produce_figures(root, "--split=test", f"--ray_root_dir={tmp_path}", f"--results_dir={tmp_path}/results")
    assert drawn.returncode == 0, drawn.stdout[-3000:] + drawn.stderr[-3000:]
    caption = (tmp_path / "results" / "tables" / "test_window_search.md").read_text().splitlines()[0]
    assert caption.startswith(f"folder {my_audio}, mel_linear_net, test accuracy"), caption
