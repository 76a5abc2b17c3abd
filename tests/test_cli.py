"""The command-line pieces without running a grid: --set parsing, the variant rules of build_space,
and the shell scripts' syntax."""
import subprocess

import pytest

from tuning.runner import ConfigError, build_space, expand_grid, parse_overrides


def test_parse_overrides_literals_strings_and_lists():
    got = parse_overrides(["lr_model=1e-3", "trainable=True", "init_lambd=[1.276, 31.9]", "frontend=adastft",
                           "stft_window=hann+hamming", "note=a=b"])
    assert got == {"lr_model": 1e-3, "trainable": True, "init_lambd": [1.276, 31.9], "frontend": "adastft",
                   "stft_window": "hann+hamming", "note": "a=b"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr_model"])


def test_a_list_becomes_a_grid_axis_and_seeds_are_an_axis():
    space = build_space("time_frequency", 3, 2, {"init_lambd": [1.0, 2.0], "n_samples": 150})
    configs = expand_grid(space)
    assert len(configs) == 2 * 2 * 2 * 2  # model x trainable x init_lambd x seed
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
    with pytest.raises(ConfigError, match="unknown search space 'nope'"):
        build_space("nope", 1, 1)
    with pytest.raises(ConfigError, match="does not divide"):
        build_space("gtzan", 1, 1, {"segment_seconds": 7.0})


@pytest.mark.parametrize("script", ["doit.sh", "run_experiments.sh", "quickstart.sh", "download_data.sh",
                                    "setup_env.sh", "run_tests.sh", ".ci/run"])
def test_shell_scripts_parse(root, script):
    done = subprocess.run(["sh", "-n", str(root / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
