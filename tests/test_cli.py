"""The command-line pieces without running a grid: --set parsing, the variant rules of build_space, what
main.py says about errored trials, and the shell scripts' syntax."""
import re
import subprocess

import pytest
from ray.exceptions import ActorDiedError, NodeDiedError, OutOfMemoryError, RayTaskError

from tuning.runner import RERUN, error_line, error_report, rerun_can_help
from tuning.spaces import ConfigError, build_space, expand_grid, parse_overrides


def test_parse_overrides_literals_strings_and_lists():
    got = parse_overrides(["lr_model=1e-3", "trainable=True", "init_lambd=[1.276, 31.9]", "frontend=adastft",
                           "stft_window=hann+hamming", "note=a=b"])
    assert got == {"lr_model": 1e-3, "trainable": True, "init_lambd": [1.276, 31.9], "frontend": "adastft",
                   "stft_window": "hann+hamming", "note": "a=b"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr_model"])


@pytest.mark.parametrize("item, says", [
    ("init_lambd=[1.0, 2.0", "--set init_lambd=[1.0, 2.0: not a Python literal"),
    ("variant={'frontend': 'leaf'", "not a Python literal"),
    ("stft_window='hann", "not a Python literal"),
    ("init_lambd=logunifrom(1, 30)", "unknown distribution 'logunifrom' (did you mean 'loguniform'?)"),
])
def test_malformed_values_are_config_errors(item, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        parse_overrides([item])


def _raised_by_trial(exc: BaseException) -> BaseException:
    """``exc`` as Tune hands over an exception the trial's own code raised: a ``RayTaskError(<type>)``."""
    return RayTaskError("ImplicitFunc.train", "Traceback (most recent call last): ...", exc).as_instanceof_cause()


CUDA = "Ray assigned this trial 0.125 GPU, but torch cannot use CUDA on node 10.0.0.2: no NVIDIA driver"


def test_a_trial_lost_by_ray_can_be_rerun_an_error_of_its_own_cannot():
    for lost in (ActorDiedError(), NodeDiedError("node 10.0.0.3 died"), OutOfMemoryError("killed\nmemory: 31 GB")):
        assert rerun_can_help(lost), lost
    for own in (RuntimeError(CUDA), ValueError("unknown model_name 'x'"), KeyError("fold"), TypeError("bad"),
                FileNotFoundError("no FSDD recordings at /d/recordings")):
        assert not rerun_can_help(_raised_by_trial(own)), own
    assert rerun_can_help(_raised_by_trial(ActorDiedError()))  # a lost actor the trial's code waited on


def test_the_error_line_is_the_exception_and_the_first_line_of_its_message():
    assert error_line(_raised_by_trial(RuntimeError(CUDA))) == f"RuntimeError: {CUDA}"
    assert error_line(_raised_by_trial(KeyError("fold"))) == "KeyError: 'fold'"
    assert error_line(OutOfMemoryError("Task was killed.\nMemory on the node: 31 GB")) == \
        "OutOfMemoryError: Task was killed."
    assert error_line(ActorDiedError()).startswith("ActorDiedError: The actor died")
    without_cause = RayTaskError("train", "Traceback (most recent call last):\n  File x\nKeyError: 'fold'\n", None)
    assert error_line(without_cause) == "KeyError: 'fold'"  # the traceback's last line


def test_errors_grouped_most_frequent_first_and_rerun_advised_only_when_it_helps():
    cuda = [(_raised_by_trial(RuntimeError(CUDA)), f"train_trial_{k}") for k in range(6)]
    lost = [(ActorDiedError(), "train_trial_9")]
    report = error_report(lost + cuda, 0, "/rr/gtzan")
    assert report[:4] == [f"6 errored: RuntimeError: {CUDA}", "  traceback: /rr/gtzan/train_trial_0/error.txt",
                          "1 errored: ActorDiedError: The actor died unexpectedly before finishing this task.",
                          "  traceback: /rr/gtzan/train_trial_9/error.txt"]
    assert report[4] == RERUN and "6 errored trial(s) raised an error of their own" in report[5]
    lasting = error_report(cuda, 0, "s3://bucket/rr/gtzan")
    assert RERUN not in lasting and "fix the cause first" in lasting[-1]
    assert lasting[1] == "  traceback: s3://bucket/rr/gtzan/train_trial_0/error.txt"
    assert error_report([], 2, "/rr/gtzan") == [RERUN]  # unfinished trials: an interrupted run
    assert error_report([], 0, "/rr/gtzan") == []


def test_a_list_becomes_a_grid_axis_and_seeds_are_an_axis():
    space = build_space("time_frequency", 3, 2, {"init_lambd": [1.0, 2.0], "n_samples": 150})
    configs = expand_grid(space)
    assert len(configs) == 2 * 2 * 2  # trainable x init_lambd x seed
    assert {c["init_lambd"] for c in configs} == {1.0, 2.0} and {c["seed"] for c in configs} == {0, 1}
    assert {c["n_samples"] for c in configs} == {150} and {c["max_epochs"] for c in configs} == {3}


def test_a_single_value_replaces_the_key_inside_every_variant():
    space = build_space("fma", 1, 1, {"batch_size": 2})
    configs = expand_grid(space)
    assert {c["batch_size"] for c in configs} == {2}  # the segment variants set 16 and 4
    assert {c["segment_seconds"] for c in configs} == {3.0, 30.0}  # the rest of each variant is kept


def test_a_list_for_a_variant_key_is_an_error():
    with pytest.raises(ConfigError, match="batch_size is set by the grid axis 'variant_segments'"):
        build_space("fma", 1, 1, {"batch_size": [2, 4]})


def test_a_whole_variant_axis_can_be_replaced():
    space = build_space("fma", 1, 1, {"variant_segments": [{"segment_seconds": 5.0, "batch_size": 8}]})
    configs = expand_grid(space)
    assert {(c["segment_seconds"], c["batch_size"]) for c in configs} == {(5.0, 8)}


def test_unknown_keys_and_spaces_are_config_errors():
    with pytest.raises(ConfigError, match="did you mean 'lr_model'"):
        build_space("time_frequency", 1, 1, {"lr_modle": 1})
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        build_space("nope", 1, 1)
    with pytest.raises(ConfigError, match="does not divide"):
        build_space("gtzan", 1, 1, {"segment_seconds": 7.0})


@pytest.mark.parametrize("script", ["doit.sh", "run_experiments.sh", "quickstart.sh", "download_data.sh",
                                    "setup_env.sh", "run_tests.sh", ".ci/run"])
def test_shell_scripts_parse(root, script):
    done = subprocess.run(["sh", "-n", str(root / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
