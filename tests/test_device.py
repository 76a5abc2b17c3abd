"""Device choice from Ray's assignment, CPU-side checkpoint loading, the checkpoint policy, AMP, the
window ceiling, the host reads of a training step, strict determinism and benchmarks/gpu_check.sh without a
GPU (everything here runs without a GPU; tests/test_gpu.py holds what needs one)."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from models.classifiers import build_model
from models.frontends import GaussianSpectrogram
from training import trial
from training.config import resolve_config
from training.loop import evaluate, make_optimizer, make_scheduler, seed_everything, train_epoch
from training.trial import CheckpointClock, _load_checkpoint, _save_checkpoint, run_trial, select_device


def test_cpu_is_cpu_whatever_ray_assigned():
    assert select_device("cpu", 0.5) == torch.device("cpu")
    assert select_device("cpu", None) == torch.device("cpu")


def test_auto_without_an_assigned_gpu_never_touches_cuda(monkeypatch):
    # a GPU box with --gpus_per_trial=0: CUDA is there, but Ray did not give it to this trial
    def touched(*_args, **_kwargs):
        raise AssertionError("CUDA was queried for a trial that Ray gave no GPU")

    monkeypatch.setattr(torch.cuda, "is_available", touched)
    monkeypatch.setattr(trial, "cuda_unusable_reason", touched)
    assert select_device("auto", 0.0) == torch.device("cpu")


def test_assigned_gpu_that_torch_cannot_use_fails_with_the_reason(monkeypatch):
    monkeypatch.setattr(trial, "cuda_unusable_reason", lambda: "the driver is on holiday")
    with pytest.raises(RuntimeError, match=r"Ray assigned this trial 0.25 GPU.*the driver is on holiday"):
        select_device("auto", 0.25)
    with pytest.raises(RuntimeError, match=r"device='cuda' was asked for.*the driver is on holiday"):
        select_device("cuda", None)
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        select_device("gpu", None)


def test_outside_ray_auto_follows_cuda(monkeypatch):
    monkeypatch.setattr(trial, "cuda_unusable_reason", lambda: "none here")
    assert select_device("auto", None) == torch.device("cpu")


def test_cuda_unusable_reasons(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "no CUDA support" in trial.cuda_unusable_reason()
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "hides every GPU" in trial.cuda_unusable_reason()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "no NVIDIA driver" in trial.cuda_unusable_reason() and "'0'" in trial.cuda_unusable_reason()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert trial.cuda_unusable_reason() is None


def _parts(cfg):
    model = build_model(cfg, 128, 3)
    opt = make_optimizer(model, cfg)
    return model, opt, make_scheduler(opt, cfg), torch.Generator().manual_seed(1)


def test_checkpoint_loads_on_the_cpu_whatever_the_device(tmp_path):
    """The RNG states are CPU byte tensors whatever device the trial runs on; the old
    ``map_location=device`` put them on the GPU and every restore failed there. The meta device
    stands in for a GPU: loading must not send anything but the weights to it."""
    cfg = resolve_config({})
    model, opt, sched, gen = _parts(cfg)
    gen.manual_seed(123)
    torch.manual_seed(7)
    best = {k: v.clone() + 1 for k, v in model.state_dict().items()}
    _save_checkpoint(tmp_path, model, opt, sched, gen, {"epoch": 3}, best, cfg)
    expected_draw = torch.rand(3, generator=gen)
    torch.manual_seed(0)

    model2, opt2, sched2, gen2 = _parts(cfg)
    state, best_loaded = _load_checkpoint(tmp_path, model2, opt2, sched2, gen2, torch.device("meta"))
    assert state == {"epoch": 3}
    assert torch.equal(torch.rand(3, generator=gen2), expected_draw)
    assert {v.device.type for v in best_loaded.values()} == {"meta"}  # best weights go to the trial's device
    for key, value in model.state_dict().items():
        assert torch.equal(model2.state_dict()[key], value)


def test_checkpoint_clock_by_epochs_and_time():
    now = [0.0]
    clock = CheckpointClock(every=3, minutes=1.0, clock=lambda: now[0])
    due = []
    for epoch in range(1, 8):
        now[0] += 10  # 10 s per epoch
        due.append(clock.due(epoch, done=False))
    assert due == [False, False, True, False, False, True, False]
    now[0] += 61  # a slow epoch: a minute has passed since the last checkpoint
    assert clock.due(8, done=False)
    assert clock.due(8, done=True)  # the end always checkpoints
    timed = CheckpointClock(every=None, minutes=None, clock=lambda: now[0])
    assert not any(timed.due(e, False) for e in range(1, 100)) and timed.due(100, True)
    with pytest.raises(ValueError, match="checkpoint_every"):
        CheckpointClock(every=0, minutes=None)


def test_checkpoints_of_a_200_epoch_trial_are_bounded_and_resume_is_exact(tmp_path):
    cfg = {"n_samples": 30, "batch_size": 64, "init_lambd": 3.0, "max_epochs": 200, "patience": 1000,
           "checkpoint_every": 50, "checkpoint_minutes": None, "lr_model": 1e-2}
    saved = {}

    def report(metrics, ckpt):
        if ckpt is not None:
            saved[metrics["epoch"]] = shutil.copytree(ckpt, tmp_path / f"ckpt_{metrics['epoch']}")

    straight = run_trial(cfg, report)
    assert sorted(saved) == [49, 99, 149, 199]  # 4 checkpoints in 200 epochs, the last at the end
    resumed_reports = []
    resumed = run_trial(cfg, lambda m, c: resumed_reports.append(m["epoch"]), restore_dir=str(saved[99]))
    assert resumed_reports == list(range(100, 200))
    for key in ("loss", "valid_loss", "lambd_est", "best_epoch", "test_loss", "test_accuracy"):
        assert resumed[key] == straight[key], key
    # the best weights were kept in memory between checkpoints and written with the last one
    best = torch.load(saved[199] / "best_model.pt", weights_only=True)
    assert best.keys() == torch.load(saved[199] / "state.pt", weights_only=False)["model"].keys()


def test_amp_runs_the_head_in_bfloat16_and_keeps_the_frontend_float32():
    cfg = resolve_config({"model_name": "conv_net", "init_lambd": 6.38})
    exact = build_model(cfg, 128, 3).eval()
    mixed = build_model({**cfg, "amp": True}, 128, 3).eval()
    mixed.load_state_dict(exact.state_dict())
    x = torch.randn(4, 128)
    logits_exact, spec_exact = exact(x)
    logits_mixed, spec_mixed = mixed(x)
    assert logits_mixed.dtype == torch.float32 and spec_mixed.dtype == torch.float32
    assert torch.equal(spec_mixed, spec_exact)  # the front-end is not autocast
    assert not torch.equal(logits_mixed, logits_exact)  # the head is
    torch.testing.assert_close(logits_mixed, logits_exact, rtol=0.05, atol=0.05)
    logits_mixed.sum().backward()
    assert mixed.frontend.lambd.grad is not None and mixed.frontend.lambd.grad.dtype == torch.float32


def test_max_window_ms_caps_the_window():
    cfg = resolve_config({"model_name": "mel_linear_net", "window_mode": "optimized", "hop_length": 80,
                          "init_window_ms": 35.0, "max_window_ms": 50.0})
    layer = build_model(cfg, 5500, 10, sample_rate=8000).gaussian_spectrogram()
    assert layer.max_lambd == pytest.approx(50.0 * 8000 / 6000)
    with torch.no_grad():
        layer.lambd.fill_(1000.0)  # a window of 750 ms
    layer.project_()
    assert layer.lambd.item() == pytest.approx(50.0 * 8000 / 6000)
    assert layer.geometry() == (512, 512)  # next power of two of 400 samples, not of 6000
    with pytest.raises(ValueError, match="outside"):
        build_model({**cfg, "init_window_ms": 100.0}, 5500, 10, sample_rate=8000)


def test_geometry_follows_a_loaded_state_dict():
    cfg = resolve_config({"model_name": "mel_linear_net", "window_mode": "optimized", "hop_length": 80,
                          "init_lambd": 10.0})
    small = build_model(cfg, 5500, 10, sample_rate=8000)
    large = build_model({**cfg, "init_lambd": 300.0}, 5500, 10, sample_rate=8000)
    small.load_state_dict(large.state_dict())
    assert small.gaussian_spectrogram().geometry() == large.gaussian_spectrogram().geometry() == (2048, 2048)


def test_in_memory_waveforms_are_sliced_where_they_live():
    from training.segments import read_segments

    x = torch.arange(40.0).reshape(4, 10)
    clips, offsets = torch.tensor([2, 0]), torch.tensor([3, 5])
    out = read_segments(x, clips, offsets, 4, torch.device("meta"))
    assert out.device.type == "meta" and out.shape == (2, 4)
    np.testing.assert_array_equal(read_segments(x, clips, offsets, 4).numpy(), [[23, 24, 25, 26], [5, 6, 7, 8]])


RAY_SCRIPT = textwrap.dedent("""
    import json, sys
    import ray
    from ray import tune
    from training.trial import train_trial
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": sys.argv[2]}})
    base = {"n_samples": 60, "max_epochs": 1, "batch_size": 64}
    out = {}
    for name, device, resources in (("auto_gpu", "auto", {"cpu": 1, "gpu": 0.5}),
                                    ("cpu_gpu", "cpu", {"cpu": 1, "gpu": 0.5}),
                                    ("auto_none", "auto", {"cpu": 1})):
        grid = tune.Tuner(tune.with_resources(train_trial, resources), param_space={**base, "device": device},
                          run_config=tune.RunConfig(storage_path=sys.argv[1], name=name, verbose=0,
                                                    failure_config=tune.FailureConfig(max_failures=0))).fit()
        out[name] = {"error": str(grid.errors[0]) if grid.errors else None,
                     "device": None if grid.errors else grid[0].metrics["device"]}
    print("RESULT " + json.dumps(out))
""")


def test_tune_trials_follow_the_assignment(root, tmp_path):
    """Through Ray Tune on a logical GPU (this machine has none that torch can use): a trial given a
    GPU it cannot use fails with the reason; ``device=cpu`` runs beside it; no GPU means the CPU."""
    script = tmp_path / "run.py"
    script.write_text(RAY_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "results"), str(root)], cwd=root,
                          capture_output=True, text=True, timeout=300, env=env)
    line = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    assert line, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(line[0][len("RESULT "):])
    if torch.cuda.is_available():  # a real GPU behind the logical one: the assigned share is used
        assert out["auto_gpu"]["error"] is None and out["auto_gpu"]["device"].startswith("cuda")
    else:
        assert "Ray assigned this trial 0.5 GPU, but torch cannot use CUDA" in out["auto_gpu"]["error"]
    assert out["cpu_gpu"] == {"error": None, "device": "cpu"}
    assert out["auto_none"] == {"error": None, "device": "cpu"}


# Tensor methods that copy a value to the host: on a GPU each one waits for the device to catch up
HOST_READS = {"__float__", "__int__", "__bool__", "__index__", "item", "tolist", "numpy", "cpu"}


class TensorCalls(TorchFunctionMode):
    """The torch functions called on tensors while active, by name, in order (``calls``), reads of a
    tensor's metadata (``requires_grad``, ``shape``: ``__get__``) left out; ``host_reads`` are those of
    :data:`HOST_READS`. It sees the calls on any device, so a CPU run shows what a GPU would wait for."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", repr(func))
        if name != "__get__" and any(isinstance(a, torch.Tensor) for a in args):
            self.calls.append(name)
        return func(*args, **(kwargs or {}))

    @property
    def host_reads(self) -> list[str]:
        return [name for name in self.calls if name in HOST_READS]


@pytest.mark.parametrize("lambd_param", ["abs", "log"])
@pytest.mark.parametrize("window_mode", ["full", "optimized"])
def test_project_of_a_frozen_window_does_nothing(window_mode, lambd_param):
    """A frozen window's project_() touches no tensor (so it cannot wait for a GPU); a trainable one reads
    lambda back once in optimized mode only (its FFT size follows lambda) and never in full mode."""
    frozen = GaussianSpectrogram(6.38, n_points=128, window_mode=window_mode, trainable=False,
                                 lambd_param=lambd_param)
    version = frozen.window_parameter._version
    with TensorCalls() as seen:
        frozen.project_()
    assert seen.calls == [] and frozen.window_parameter._version == version
    trainable = GaussianSpectrogram(6.38, n_points=128, window_mode=window_mode, lambd_param=lambd_param)
    with TensorCalls() as seen:
        trainable.project_()
    assert seen.host_reads == (["__float__"] if window_mode == "optimized" else [])


@pytest.mark.parametrize("window_mode,freeze", [("full", None), ("optimized", "trainable=False"),
                                                ("optimized", "tf_warmup_epochs")])
def test_training_steps_read_nothing_back(window_mode, freeze):
    """The CPU twin of tests/test_gpu.py::test_training_steps_do_not_wait_for_the_gpu: an epoch's host reads
    do not grow with its steps, for a trainable full window and for an optimized one that is frozen
    (a fixed window, or one held during its tf_warmup_epochs). SGD, the grids' optimizer: torch's Adam
    reads its step count from a CPU tensor at every step, which waits for nothing on a GPU but looks the
    same here."""
    cfg = resolve_config({"model_name": "linear_net", "window_mode": window_mode, "optimizer_name": "sgd",
                          "trainable": freeze != "trainable=False", "tf_warmup_epochs": 1, "init_lambd": 6.38,
                          "hop_length": 1 if window_mode == "full" else 4})
    model = build_model(cfg, 32, 3)  # short signals: a full window is 32 samples (n_fft 64)
    opt = make_optimizer(model, cfg)
    assert model.set_frontend_training(cfg, epoch=0 if freeze == "tf_warmup_epochs" else 1) == (freeze is None)
    gen, cpu = torch.Generator().manual_seed(0), torch.device("cpu")
    reads = {}
    for n in (8, 64):  # 2 and 16 steps of 4
        x, y = torch.randn(n, 32), torch.randint(0, 3, (n,))
        train_epoch(model, opt, x, y, 4, gen, cpu)  # warm-up
        with TensorCalls() as training:
            train_epoch(model, opt, x, y, 4, gen, cpu)
        with TensorCalls() as evaluation:
            evaluate(model, x, y, 4, cpu)
        reads[n] = (training.host_reads, evaluation.host_reads)
    assert reads[8] == reads[64], reads


def test_deterministic_trials_name_a_nondeterministic_kernel(monkeypatch):
    """``deterministic=True`` makes an operation without a deterministic kernel warn, naming it (torch's
    ``put_`` without accumulation has none, on the CPU too; on CUDA ResNet18's pooling backward has none, so
    raising would stop the GPU music grids); every trial sets ``CUBLAS_WORKSPACE_CONFIG``
    to one of the two values torch accepts as deterministic (``:4096:8``, ``:16:8``) whatever its own
    ``deterministic``, before any CUDA work, since torch reads it once per process."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        seed_everything(0, deterministic=False)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")
        seed_everything(0, deterministic=True)
        with pytest.warns(UserWarning, match="does not have a deterministic implementation"):
            torch.zeros(3).put_(torch.tensor([0]), torch.tensor([1.0]))
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_gpu_check_stops_with_the_reason_without_a_gpu(root, tmp_path):
    """benchmarks/gpu_check.sh parses; where torch sees no GPU (hidden here, so on a GPU machine too) it stops
    after its GPU step with the reason, lists the steps it did not run, writes its report and exits 1."""
    script = root / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    stamp = Path(sys.prefix) / ".requirements.sha256"
    wanted = hashlib.sha256((root / "requirements.txt").read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != wanted:
        pytest.skip("this venv was not made by setup_env.sh, which the script would run to install it")
    report = tmp_path / "report.txt"
    env = {**os.environ, "VENV": sys.prefix, "CUDA_VISIBLE_DEVICES": "", "GPU_CHECK_REPORT": str(report)}
    done = subprocess.run(["sh", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "no usable CUDA GPU: CUDA_VISIBLE_DEVICES='' hides every GPU" in done.stdout
    text = report.read_text()
    assert "--- gpu: FAIL (exit 1)" in text and text.rstrip().endswith(f"gpu_check: FAIL; report: {report}")
    for step in ("pytest", "grid16", "grid_step", "frontend"):
        assert re.search(rf"^{step} +- +not run \(no usable GPU\)$", text, re.MULTILINE), step
