"""Values refused before Ray starts (tuning/validate.py): ``main.main`` returns 2 with one line on stderr that
names the key, the value and the fix, and neither starts Ray nor builds a cache nor touches an experiment.
The expected names and ranges are written out here, not read from the registries."""
import os
import stat

import pytest
import ray

import main
from tuning.experiments import list_experiments
from training.config import DEFAULTS, resolve_config
from tuning.spaces import build_parts, expand_grid
from tuning import validate
from tuning.validate import CHOICES, FLAGS, OTHER_KEYS, RANGES, check_configs, check_space


@pytest.fixture
def refused(monkeypatch, capsys, tmp_path):
    """``refused(*argv)``: run ``main.main`` on ``argv`` (storage in ``tmp_path/rr`` unless given), assert it
    exits 2 without starting Ray or preparing data, and return its one line on stderr."""
    def fail(*_args, **_kwargs):
        raise AssertionError("a refused command got as far as Ray or the data cache")

    monkeypatch.setattr(main, "init_ray", fail)
    monkeypatch.setattr(main, "prepare", fail)

    def run(*argv: str) -> str:
        ray_was_up = ray.is_initialized()
        storage = [] if any(a.startswith(("--ray_root_dir", "--storage")) for a in argv) else \
            [f"--ray_root_dir={tmp_path / 'rr'}"]
        code = main.main([*argv, *storage])
        err = capsys.readouterr().err
        assert code == 2, err
        assert ray.is_initialized() == ray_was_up
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        return lines[0]
    return run


def _says(line: str, *parts: str) -> None:
    assert all(part in line for part in parts), (line, parts)


@pytest.mark.parametrize("key, value, fix", [
    ("model_name", "linear", "cnn6, conv_net, fma_cnn, imagenet, linear_net, mel_conv_net, mel_linear_net, mel_mlp_net, "
                             "mlp_net, resnet18 (did you mean 'linear_net'?)"),
    ("frontend", "gauss", "gaussian, torchaudio_mel, adastft, sincnet, trainable_mel, dstft, leaf, efficientleaf"),
    ("optimizer_name", "sdg", "sgd, adam, adamw (did you mean 'sgd'?)"),
    ("window_mode", "fast", "full, optimized"),
    ("dataset_name", "mnist", "time_frequency, audio_mnist, gtzan, fma, esc50, audiomnist60, folder"),
    ("loss", "mse", "ce, bce"),
])
def test_unknown_names(refused, key, value, fix):
    _says(refused("--name=time_frequency", "--set", f"{key}={value}"), f"{key}='{value}': must be one of {fix}")


@pytest.mark.parametrize("name, key, value, fix", [
    ("time_frequency", "lambd_param", "exp", "abs, log"),
    ("time_frequency", "compression", "db", "log, pcen"),
    ("time_frequency", "noise_kind", "pink", "uniform, gaussian"),
    ("time_frequency", "train_segments", "every", "random_crop, all"),
    ("time_frequency", "device", "tpu", "auto, cpu, cuda"),
    ("time_frequency", "dstft_variation", "space", "none, time, frequency, time_frequency"),
    ("gtzan", "leaf_compression", "log", "pcen, log_tbn, log_tbn_median"),
    ("fma", "fma_subset", "large", "small, medium"),
    ("esc50", "clip_padding", "left", "end, center"),
    ("audio_mnist", "protocol", "random", "dmel, standard, speaker"),
])
def test_unknown_values_of_enumerated_keys(refused, tmp_path, name, key, value, fix):
    _says(refused(f"--name={name}", f"--data_dir={tmp_path}", "--set", f"{key}={value}"),
          f"{key}='{value}': must be one of {fix}")


@pytest.mark.parametrize("args, says", [
    (["--set", "batch_size=0"], ["batch_size=0: must be an integer >= 1"]),
    (["--set", "patience=2.5"], ["patience=2.5: must be an integer >= 1"]),
    (["--max_epochs=0"], ["--max_epochs=0: must be an integer >= 1"]),
    (["--set", "momentum=1.0"], ["momentum=1.0: must be a number in [0, 1)"]),
    (["--set", "split_seed=-1"], ["split_seed=-1: must be None or an integer in [0, 4294967296)"]),
    # 70/10/20 of 5 signals rounds to 4/0/1 (half to even), of 6 to 4/1/1
    (["--set", "n_samples=5"], ["n_samples=5: leaves a train, valid or test split", "use at least 6"]),
    (["--set", "init_lambd=200.0"], ["init_lambd=200.0: outside [0.5, 128] samples", "choose a lambda inside"]),
    (["--set", "min_lambd=8.0", "--set", "init_lambd=6.38"], ["init_lambd=6.38: outside [8, 128] samples"]),
    (["--set", "init_window_ms=25.0"], ["init_window_ms=25.0: time_frequency has no sample rate",
                                        "give init_lambd (samples"]),
])
def test_numbers_out_of_range(refused, args, says):
    _says(refused("--name=time_frequency", *args), *says)


@pytest.mark.parametrize("args, says", [
    # FSDD's 5,500-sample input at 8 kHz: windows 6 lambda from 6 * 0.5 / 8 = 0.375 ms to 6 * 5500 / 8 = 4125 ms
    (["--set", "init_window_ms=5000.0"], ["init_window_ms=5000.0: outside [0.375, 4125] ms at 8000 Hz"]),
    # DSTFT's ceiling is dstft_max_window_ms: 10 ms; its floor min_lambd = 0.5 samples, 0.375 ms
    (["--set", "frontend=dstft", "--set", "dstft_max_window_ms=10.0", "--set", "init_window_ms=25.0"],
     ["init_window_ms=25.0: outside [0.375, 10] ms at 8000 Hz (min_lambd to dstft_max_window_ms)"]),
    (["--set", "sample_rate=16000"], ["sample_rate=16000: audio_mnist is recorded at 8000 Hz; set sample_rate=8000"]),
    (["--set", "sample_rate=0"], ["sample_rate=0: must be an integer >= 1"]),
])
def test_windows_and_sample_rates_of_audio(refused, tmp_path, args, says):
    _says(refused("--name=audio_mnist", f"--data_dir={tmp_path}", *args), *says)


def test_esc50_folds(refused, tmp_path):
    _says(refused("--name=esc50_folds", f"--data_dir={tmp_path}", "--set", "fold=6"), "fold=6: esc50 has folds 1 to 5")


@pytest.mark.parametrize("args, says", [
    (["--cpus_per_trial=0"], "--cpus_per_trial=0.0: must be a number > 0"),
    (["--gpus_per_trial=-0.5"], "--gpus_per_trial=-0.5: must be None or a number >= 0"),
    (["--gpus_per_trial=1.5"], "--gpus_per_trial=1.5: a share above 1 must be whole GPUs"),
    (["--num_samples=0"], "--num_samples must be at least 1, got 0"),
    (["--max_concurrent=0"], "--max_concurrent=0: must be None or an integer >= 1"),
    (["--num_cpus=0"], "--num_cpus=0: must be None or an integer >= 1"),
    (["--max_failures=-2"], "--max_failures=-2: must be an integer >= -1 (-1: retry forever)"),
    (["--num_cpus=2", "--cpus_per_trial=3"], "--cpus_per_trial=3.0: the local Ray has 2 CPUs (--num_cpus)"),
])
def test_resources(refused, args, says):
    _says(refused("--name=time_frequency", *args), says)


@pytest.mark.parametrize("args, says", [
    (["--set", "init_lambd=[1.0, 2.0"], ["--set init_lambd=[1.0, 2.0: not a Python literal", "write a list as [1, 2]"]),
    (["--set", "batch_size=12x"], ["batch_size='12x': must be an integer >= 1"]),
    (["--set", "trainable=yes"], ["trainable='yes': must be True or False"]),
    (["--set", "init_lambd=log_uniform(1.0, 30.0)"],
     ["unknown distribution 'log_uniform' (did you mean 'loguniform'?)"]),
    (["--search=random", "--set", "trainable=True", "--set", "init_lambd=loguniform(30.0, 1.0)"],
     ["init_lambd: a distribution from 30 to 1; its lower bound must be below its upper bound"]),
    (["--search=random", "--set", "trainable=True", "--set", "init_lambd=uniform(2.0, 2.0)"],
     ["init_lambd: a distribution from 2 to 2"]),
    (["--search=random", "--set", "trainable=True", "--set", "init_lambd=1.0", "--set", "batch_size=choice([])"],
     ["batch_size=choice([]): give choice() at least one value"]),
])
def test_malformed_set_values_and_distributions(refused, args, says):
    _says(refused("--name=time_frequency", *args), *says)


def test_storage_that_cannot_be_written(refused, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _says(refused("--name=time_frequency", f"--ray_root_dir={blocker}/rr"), f"{blocker} is a file, not a folder")
    _says(refused("--name=time_frequency", f"--storage=file://{blocker}/rr"), "--storage=file://", "not a folder")
    assert blocker.read_text() == "" and sorted(tmp_path.iterdir()) == [blocker]


def test_a_folder_without_write_permission(refused, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # root may write anywhere: the permission the folder would refuse to anyone else
        monkeypatch.setattr(validate.os, "access", lambda path, mode: os.fspath(path) != str(locked))
    try:
        _says(refused("--name=time_frequency", f"--ray_root_dir={locked}/rr"), f"cannot write in {locked}")
    finally:
        locked.chmod(stat.S_IRWXU)


def _snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def test_a_refused_command_leaves_an_existing_experiment_as_it_was(refused, tmp_path):
    rr = tmp_path / "rr"
    trial = rr / "time_frequency" / "train_trial_00000"
    trial.mkdir(parents=True)
    (rr / "time_frequency" / "harness_space.json").write_text('{"seed": [0]}')
    (trial / "result.json").write_text('{"epoch": 0}\n')
    before = _snapshot(rr)
    for bad in (["--set", "batch_size=0"], ["--cpus_per_trial=0"], ["--set", "model_name=nope"]):
        refused("--name=time_frequency", "--fresh", f"--ray_root_dir={rr}", *bad)  # --fresh would move it aside
    assert _snapshot(rr) == before


def test_several_problems_one_line_each_and_a_grid_axis_named_once():
    good = resolve_config({})
    bad = [resolve_config({"batch_size": 0, "seed": seed, "loss": "mse"}) for seed in (0, 1, 2)]
    assert check_configs([good, *bad]) == ["loss='mse': must be one of ce, bce",
                                           "batch_size=0: must be an integer >= 1"]


def test_every_shipped_space_passes():
    for name in list_experiments():
        for part in build_parts(name, 10, 2):
            assert check_space(part.space) == [], part.name
            assert check_configs(expand_grid(part.space)) == [], part.name


def test_every_config_key_has_a_check():
    checked = [*RANGES, *CHOICES, *FLAGS, *OTHER_KEYS, *validate.record_checked_keys()]
    assert sorted(checked) == sorted(DEFAULTS)  # each key once
