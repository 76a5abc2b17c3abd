"""What only a CUDA GPU can show (marked ``gpu``; skipped without one). Run them with ``pytest -m gpu``
(``sh benchmarks/gpu_check.sh`` runs them with the GPU benchmarks).

DMEL and Ada-STFT on CUDA equal the CPU to float32 tolerance (values and gradients), a cache's rows
reach the GPU through pinned memory unchanged, a trial resumes bit-exact on CUDA with
``deterministic=True`` (CUDA RNG state included: SpecAugment draws its masks there; no operation of the
run may warn that it has no deterministic kernel, and ``tests/conftest.py`` sets ``CUBLAS_WORKSPACE_CONFIG`` before any
test touches CUDA), three 1/3-GPU trials of a grid share one GPU at once, a trial's GPU memory is
capped at its share and its cache handed back, and training steps do not wait for the GPU.
"""
import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from corpora.splits import Rows
from models.frontends import DMEL, AdaSTFT
from training import trial
from training.segments import read_segments
from training.trial import run_trial

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def _values_and_grads(layer, x):
    out = layer(x)
    weights = torch.linspace(0.5, 1.5, out.numel(), device=out.device).reshape(out.shape)
    (out * weights).sum().backward()
    grads = {name: p.grad.detach().cpu() for name, p in layer.named_parameters() if p.grad is not None}
    return out.detach().cpu(), grads


@pytest.mark.parametrize("window_ms", [10.0, 35.0, 300.0])
def test_dmel_on_cuda_equals_cpu(window_ms):
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((8, 8000)).astype(np.float32))
    kwargs = dict(sample_rate=8000, n_mels=64, init_lambd=8000 * window_ms / 6000, n_points=8000, hop_length=80,
                  window_mode="optimized")
    cpu_out, cpu_grads = _values_and_grads(DMEL(**kwargs), x)
    gpu_out, gpu_grads = _values_and_grads(DMEL(**kwargs).to(CUDA), x.to(CUDA))
    torch.testing.assert_close(gpu_out, cpu_out, rtol=1e-4, atol=1e-3)  # log-mel, natural log units
    assert cpu_grads.keys() == gpu_grads.keys() == {"spectrogram.lambd"}
    torch.testing.assert_close(gpu_grads["spectrogram.lambd"], cpu_grads["spectrogram.lambd"], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("learn_kernels", [False, True])
def test_adastft_on_cuda_equals_cpu(learn_kernels):
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((4, 22050)).astype(np.float32))
    torch.manual_seed(0)
    cpu = AdaSTFT(22050, n_fft=1024, hop_length=512, learn_window=True, learn_kernels=learn_kernels)
    gpu = AdaSTFT(22050, n_fft=1024, hop_length=512, learn_window=True, learn_kernels=learn_kernels).to(CUDA)
    cpu_out, cpu_grads = _values_and_grads(cpu, x)
    gpu_out, gpu_grads = _values_and_grads(gpu, x.to(CUDA))
    torch.testing.assert_close(gpu_out, cpu_out, rtol=1e-4, atol=1e-4)
    assert cpu_grads.keys() == gpu_grads.keys()
    for name in cpu_grads:
        scale = cpu_grads[name].abs().max()
        torch.testing.assert_close(gpu_grads[name], cpu_grads[name], rtol=1e-3, atol=1e-4 * float(scale))


def test_cache_rows_reach_the_gpu_through_pinned_memory():
    array = np.random.default_rng(2).standard_normal((6, 1000)).astype(np.float16)
    rows = Rows(array, [5, 1, 3])
    clips, offsets = torch.tensor([2, 0, 1]), torch.tensor([10, 0, 500])
    on_gpu = read_segments(rows, clips, offsets, 400, CUDA)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), read_segments(rows, clips, offsets, 400), rtol=0, atol=0)


def test_trial_resumes_bit_exact_on_cuda(tmp_path):
    cfg = {"device": "cuda", "deterministic": True, "model_name": "conv_net", "n_samples": 600, "batch_size": 64,
           "init_lambd": 3.0, "max_epochs": 4, "checkpoint_every": 1, "specaugment_freq": 20, "specaugment_time": 20}
    saved = {}

    def report(metrics, ckpt):
        assert metrics["device"].startswith("cuda")
        if ckpt is not None:
            saved[metrics["epoch"]] = shutil.copytree(ckpt, tmp_path / f"ckpt_{metrics['epoch']}")

    # seed_everything only warns about an operation without a deterministic kernel (ResNet18's pooling has
    # none on CUDA): here, any such warning fails the test
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*does not have a deterministic implementation")
        straight = run_trial(cfg, report)
        resumed = run_trial(cfg, lambda m, c: None, restore_dir=str(saved[1]))
    for key in ("loss", "valid_loss", "lambd_est", "test_loss", "test_accuracy"):
        assert resumed[key] == straight[key], key


def test_three_trials_share_one_gpu(root, tmp_path):
    args = [sys.executable, "main.py", "--name=time_frequency", "--num_cpus=3", "--gpus_per_trial=0.33",
            "--max_epochs=40", "--set", "n_samples=1500", "--set", 'model_name="linear_net"', "--set",
            "trainable=True", "--set", "checkpoint_every=10", f"--ray_root_dir={tmp_path}"]
    done = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    spans = []
    for result in sorted((tmp_path / "time_frequency").glob("train_trial*/result.json")):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        assert {row["device"] for row in rows} == {"cuda:0"}
        spans.append((rows[0]["timestamp"] - rows[0]["time_this_iter_s"], rows[-1]["timestamp"]))
    assert len(spans) == 3
    # Tune's timestamp is the report's time t truncated to the second (timestamp <= t < timestamp + 1), so a
    # trial really started before its start + 1 and ended at or after its end: all three ran at once if the
    # latest start + 1 is before the earliest end
    latest_start, earliest_end = max(s for s, _ in spans), min(e for _, e in spans)
    assert latest_start + 1 < earliest_end, spans  # all three held their share of the GPU at the same time


def test_a_trial_caps_its_gpu_memory_at_its_share_and_hands_its_cache_back(monkeypatch):
    """A trial Ray gave 1/8 of the GPU: an allocation above 1/8 of the GPU's memory fails on the cap (the
    allocator's error names what is allowed), one below it succeeds, and ``train_trial`` empties the
    cache when the trial ends (a block freed at its end is no longer reserved)."""
    share = 0.125
    total = torch.cuda.get_device_properties(CUDA).total_memory  # bytes
    block = int(share * total / 4)  # bytes, well inside the cap
    monkeypatch.setattr(trial, "_ray_context", lambda: ("", share))  # as in a Ray worker given 1/8 GPU
    run, cached = trial.run_trial, {}

    def run_then_free_a_block(config, report, restore_dir=None):
        out = run(config, report, restore_dir)
        torch.empty(block, dtype=torch.uint8, device=CUDA)  # allocated and freed: the cache keeps it
        cached["reserved"] = torch.cuda.memory_reserved(CUDA)
        return out

    monkeypatch.setattr(trial, "run_trial", run_then_free_a_block)
    try:
        trial.train_trial({"model_name": "linear_net", "n_samples": 300, "max_epochs": 1, "init_lambd": 6.38})
        assert torch.cuda.memory_reserved(CUDA) <= cached["reserved"] - block  # handed back
        with pytest.raises(torch.cuda.OutOfMemoryError, match="allowed"):
            torch.empty(int(2 * share * total), dtype=torch.uint8, device=CUDA)
        torch.empty(block, dtype=torch.uint8, device=CUDA)  # below the cap
    finally:  # the cap holds for the whole process: lift it for the tests after this one
        torch.cuda.set_per_process_memory_fraction(1.0, CUDA)
        torch.cuda.empty_cache()


def _sync_warnings(fn) -> int:
    """Number of synchronising CUDA operations ``fn()`` performs (torch's sync debug mode)."""
    import warnings

    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize("window_mode,freeze", [("full", None), ("optimized", "trainable=False"),
                                                ("optimized", "tf_warmup_epochs")])
def test_training_steps_do_not_wait_for_the_gpu(window_mode, freeze):
    """The host syncs of an epoch do not grow with its number of steps (loss summed on the device,
    window geometry from the host copy of lambda, nothing read back for a frozen window: a fixed one or
    one held during its tf_warmup_epochs). A trainable optimized window reads lambda back once per step
    by design (n_fft depends on it), so it is not in this list. (tests/test_device.py counts the same
    host reads on the CPU.)"""
    from models.classifiers import build_model
    from training.config import resolve_config
    from training.loop import evaluate, make_optimizer, train_epoch

    cfg = resolve_config({"model_name": "conv_net", "window_mode": window_mode, "tf_warmup_epochs": 1,
                          "trainable": freeze != "trainable=False", "init_lambd": 6.38,
                          "hop_length": 1 if window_mode == "full" else 4})
    model = build_model(cfg, 128, 3).to(CUDA)
    opt = make_optimizer(model, cfg)
    assert model.set_frontend_training(cfg, epoch=0 if freeze == "tf_warmup_epochs" else 1) == (freeze is None)
    gen = torch.Generator().manual_seed(0)
    counts = {}
    for n in (64, 512):  # 2 and 16 steps of 32
        x, y = torch.randn(n, 128, device=CUDA), torch.randint(0, 3, (n,))
        train_epoch(model, opt, x, y, 32, gen, CUDA)  # warm-up (cuFFT plans, allocator)
        counts[n] = (_sync_warnings(lambda: train_epoch(model, opt, x, y, 32, gen, CUDA)),
                     _sync_warnings(lambda: evaluate(model, x, y, 32, CUDA)))
    assert counts[64] == counts[512], counts
