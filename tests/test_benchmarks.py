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
    assert [r[0] for r in rows] == ["mel_linear_net", "mel_conv_net"]
    for row in rows:
        seconds, minutes, rss = float(row[-4]), float(row[-3]), float(row[-2])
        assert seconds > 0 and minutes >= 0 and rss > 100  # MB: a process with torch loaded; minutes print as 0.00 when fast


def test_tune_overhead_runs_both_ways(root):
    out = bench(root, "bench_tune_overhead.py", "--epochs", "3", "--n_samples", "150")
    assert "run_trial alone:" in out and "through Tune:" in out and "Tune overhead:" in out
    assert "persisted by Tune" in out
