"""The benchmarks run end to end at a tiny size (they import the training code, so they break with it)."""
import subprocess
import sys


def bench(root, name, *args, timeout=300):
    done = subprocess.run([sys.executable, f"benchmarks/{name}", *args], cwd=root, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_grid_step_prints_time_and_memory_per_configuration(root):
    out = bench(root, "bench_grid_step.py", "--grid", "audio_mnist_reference", "--repeats", "1", "--threads", "1")
    assert "audio_mnist_reference grid: one training step at full size on cpu" in out
    assert "peak RSS MB" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("mel_")]
    assert [r[0] for r in rows] == ["mel_linear_net"]  # the grid's one configuration (LNet)
    for row in rows:
        seconds, minutes, rss = float(row[-4]), float(row[-3]), float(row[-2])
        assert seconds > 0 and minutes >= 0 and rss > 100  # MB: a process with torch loaded; minutes print as 0.00 when fast


def test_tune_overhead_runs_both_ways(root):
    out = bench(root, "bench_tune_overhead.py", "--epochs", "3", "--n_samples", "150")
    assert "run_trial alone:" in out and "through Tune:" in out and "Tune overhead:" in out
    assert "persisted by Tune" in out


def test_frontend_bench_covers_the_registry(root):
    """The benchmark's default front-ends are the registry's; named ones each get a row (a number or
    ``fails``) in both tables, at a tiny size (three of them: every case that builds is a process of its own)."""
    import importlib.util

    from models.registry import list_frontends

    spec = importlib.util.spec_from_file_location("bench_frontend", root / "benchmarks/bench_frontend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.parser().parse_args([]).frontends == list(list_frontends())  # --frontends defaults to the registry
    named = ["gaussian", "torchaudio_mel", "efficientleaf"]
    out = bench(root, "bench_frontend.py", "--settings", "fsdd", "synthetic", "--windows_ms", "10", "--repeats", "1",
                "--max_batch_elements", "1000",  # EfficientLEAF filters in checkpointed chunks of the batch
                "--batch", "2", "--n_points", "1200", "--frontends", *named)
    tables = [t for t in out.split("\n\n") if t.startswith("| forward + backward") or t.startswith("| peak memory")]
    assert len(tables) == 2
    for table in tables:
        rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in table.splitlines()[2:]}
        assert set(named) <= set(rows)
        assert len(rows["gaussian"]) == 2  # fsdd 10 ms (--windows_ms) and synthetic
        assert all(cell.strip() != "fails" for cell in rows["gaussian"])
        assert rows["torchaudio_mel"][0].strip() != "fails" and rows["efficientleaf"][0].strip() != "fails"
    assert "torchaudio_mel at synthetic: does not build" in out


def test_fsdd_as_folder_writes_the_mixed_collection(root, tmp_path):
    """Two digits x three speakers x takes 0 and 45: take 45 is held back, nicolas becomes 16 kHz stereo
    FLAC, theo's take 0 MP3, jackson's WAV is copied byte for byte; the folder corpus reads all of it."""
    import numpy as np
    import soundfile as sf

    from corpora.folder import find_class_folders

    rng = np.random.default_rng(0)
    (tmp_path / "fsdd" / "recordings").mkdir(parents=True)
    for digit in (0, 1):
        for speaker in ("jackson", "nicolas", "theo"):
            for take in (0, 45):
                sf.write(tmp_path / "fsdd" / "recordings" / f"{digit}_{speaker}_{take}.wav",
                         0.1 * rng.standard_normal(4000), 8000, subtype="PCM_16")
    out = bench(root, "fsdd_as_folder.py", "--fsdd", str(tmp_path / "fsdd"), "--out", str(tmp_path / "mine"))
    assert "2 WAV, 2 FLAC, 2 MP3" in out and "6 WAV held back" in out, out
    digits = tmp_path / "mine" / "digits"
    assert sorted(p.name for p in (tmp_path / "mine" / "new").iterdir()) == sorted(
        f"{d}_{s}_45.wav" for d in (0, 1) for s in ("jackson", "nicolas", "theo"))
    assert (digits / "0" / "0_jackson_0.wav").read_bytes() == (tmp_path / "fsdd/recordings/0_jackson_0.wav").read_bytes()
    flac = sf.info(digits / "1" / "1_nicolas_0.flac")
    assert (flac.samplerate, flac.channels, flac.frames) == (16000, 2, 8000)
    assert sf.info(digits / "1" / "1_theo_0.mp3").format == "MP3"
    table, _ = find_class_folders(digits, ("wav", "flac", "ogg", "mp3"))
    assert sorted(table["label"]) == ["0"] * 3 + ["1"] * 3
