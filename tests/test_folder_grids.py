"""The user's own audio through the shipped grids: ``--set dataset_name=folder --data_dir=...`` runs the
front-end bench (every registered front-end) and DMEL trainable vs fixed on a generated folder of class
sub-folders (WAV and FLAC at 16 and 44.1 kHz, one stereo), resampled to the grids' 8 kHz."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from models.registry import FRONTENDS
from tests.inprocess import main_py

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
    expected = len(FRONTENDS) + 0 if grid == "frontends" else 6  # the bench: 11 variants; audio_mnist: 2 x 3 windows
    assert len(trials) == (11 if grid == "frontends" else expected), trials
    if grid == "frontends":
        assert {fe for fe, _, _ in trials} == set(FRONTENDS)
    assert all(files == 20 and 0 <= acc <= 1 for _, files, acc in trials)
