"""FSDD loader protocols, error handling, and a tiny real Tune run of the audio_mnist grid on a fixture."""
import numpy as np
import pytest
import soundfile as sf

from corpora import fsdd
from tests.fixtures import make_fsdd
from tests.independent import assert_tables
from tests.inprocess import main_py, produce_figures
from training.config import resolve_config


@pytest.fixture(scope="module")
def fsdd_dir(tmp_path_factory):
    """The fixture in a folder whose name has spaces and non-ASCII letters (so every test here,
    the Tune run and the figures included, proves such paths work)."""
    return make_fsdd(tmp_path_factory.mktemp("fsdd") / "données du test")


def cfg(data_dir, **kw):
    return resolve_config({"dataset_name": "audio_mnist", "data_dir": str(data_dir), "n_points": 5500, **kw})


def test_dmel_protocol(fsdd_dir):
    s = fsdd.load_splits(cfg(fsdd_dir, protocol="dmel", seed=0))
    n = len(s.y_train) + len(s.y_valid) + len(s.y_test)
    kept = sum(1500 <= len(w) <= 5500 for w in fsdd.read_recordings(str(fsdd_dir))[0])
    assert n == kept == 360 - s.info["excluded"] and s.info["excluded"] > 0
    assert (len(s.y_train), len(s.y_valid)) == (round(0.7 * n), round(0.1 * n))
    assert s.x_train.shape[1] == 5500 and s.sample_rate == 8000 and s.n_classes == 10
    assert not set(s.ids_train) & set(s.ids_test) and not set(s.ids_valid) & set(s.ids_test)
    again = fsdd.load_splits(cfg(fsdd_dir, protocol="dmel", seed=0))
    other = fsdd.load_splits(cfg(fsdd_dir, protocol="dmel", seed=1))
    assert again.ids_test == s.ids_test and other.ids_test != s.ids_test
    # zero padding at the end: the tail of a short recording is zero
    short = s.ids_train.index(min(s.ids_train, key=lambda i: len(sf.read(fsdd_dir / "recordings" / f"{i}.wav")[0])))
    assert s.x_train[short, -100:].abs().max().item() == 0.0


def test_standard_protocol(fsdd_dir):
    s = fsdd.load_splits(cfg(fsdd_dir, protocol="standard"))
    take = lambda ids: {int(i.split("_")[2]) for i in ids}  # noqa: E731
    assert take(s.ids_test) == set(range(5)) and take(s.ids_valid) == set(range(5, 10))
    assert take(s.ids_train) == {10, 11}
    assert (len(s.y_train), len(s.y_valid), len(s.y_test)) == (60, 150, 150)
    assert s.info["cropped"] > 0  # recordings longer than 5,500 samples are cut


def test_speaker_protocol(fsdd_dir):
    for seed in range(3):
        s = fsdd.load_splits(cfg(fsdd_dir, protocol="speaker", seed=seed))
        spk = lambda ids: {i.split("_")[1] for i in ids}  # noqa: E731
        assert len(spk(s.ids_test)) == len(spk(s.ids_valid)) == 1
        assert not spk(s.ids_train) & (spk(s.ids_test) | spk(s.ids_valid))
    assert fsdd.load_splits(cfg(fsdd_dir, protocol="speaker", seed=0)).ids_test != \
        fsdd.load_splits(cfg(fsdd_dir, protocol="speaker", seed=1)).ids_test


def test_unreadable_file_is_skipped_and_counted(tmp_path):
    root = make_fsdd(tmp_path / "f", takes=2)
    (root / "recordings" / "3_bob_7.wav").write_bytes(b"not audio at all")
    with pytest.warns(UserWarning, match="skipped 1 unreadable file.*3_bob_7.wav"):
        s = fsdd.load_splits(cfg(root, protocol="dmel"))
    assert s.info["unreadable"] == 1
    with pytest.raises(ValueError, match="empty train split"):  # takes 0-1 only: nothing to train on
        fsdd.load_splits(cfg(root, protocol="standard"))


def test_wrong_sample_rate_names_the_file(tmp_path):
    root = make_fsdd(tmp_path / "f", takes=1)
    sf.write(root / "recordings" / "4_alice_9.wav", np.zeros(3000, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="4_alice_9.wav: sample rate 16000 Hz"):
        fsdd.read_recordings(str(root))


def test_missing_folder_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="sh download_data.sh"):
        fsdd.read_recordings(str(tmp_path / "nothing"))


def test_unknown_protocol(fsdd_dir):
    with pytest.raises(ValueError, match="unknown FSDD protocol 'random'"):
        fsdd.load_splits(cfg(fsdd_dir, protocol="random"))


def test_cli_missing_data_dir(root, tmp_path):
    out = main_py(root, "--name=audio_mnist", f"--data_dir={tmp_path}/none", f"--ray_root_dir={tmp_path}/rr")
    assert out.returncode == 2 and "sh download_data.sh" in out.stderr


def test_tune_run_on_fixture_and_figure(root, fsdd_dir, tmp_path):
    tmp_path = tmp_path / "résultats à voir"  # results and figures under a path with spaces and accents too
    common = ["--num_cpus=2", "--max_epochs=2", f"--data_dir={fsdd_dir}", f"--ray_root_dir={tmp_path}/rr",
              "--set", 'model_name="mel_linear_net"']
    grid = main_py(root, "--name=fsdd", *common, "--set", "init_lambd=[13.333,400.0]")
    assert grid.returncode == 0, grid.stdout[-3000:] + grid.stderr[-3000:]
    assert "4 trials finished" in grid.stdout
    ref = main_py(root, "--name=audio_mnist_reference", *common)
    assert ref.returncode == 0, ref.stdout[-3000:] + ref.stderr[-3000:]
    figs = produce_figures(root, f"--ray_root_dir={tmp_path}/rr", f"--results_dir={tmp_path}/results")
    assert figs.returncode == 0, figs.stderr[-3000:]
    assert (tmp_path / "results/figures/test_audio_mnist.pdf").stat().st_size > 0
    table = (tmp_path / "results/tables/test_audio_mnist.md").read_text()
    assert "| mel_linear_net |" in table and "94.9 ± 1.0" in table and "not run" not in table
    assert_tables(tmp_path / "rr", tmp_path / "results/tables", "audio_mnist")  # every cell, from the trials


def test_split_seed_fixes_the_split_across_repetitions(fsdd_dir):
    """``split_seed`` (the paper grids: 0) gives every repetition the same split, as the DMEL code's generator
    seeded 0; ``None`` re-draws it from each trial's ``seed``."""
    fixed = [fsdd.load_splits(cfg(fsdd_dir, protocol="dmel", seed=k, split_seed=0)) for k in (0, 1, 2)]
    assert all(s.ids_test == fixed[0].ids_test and s.ids_train == fixed[0].ids_train for s in fixed)
    assert fixed[0].ids_test == fsdd.load_splits(cfg(fsdd_dir, protocol="dmel", seed=0)).ids_test  # seed 0 either way
    redrawn = [fsdd.load_splits(cfg(fsdd_dir, protocol="dmel", seed=k, split_seed=None)).ids_test for k in (0, 1)]
    assert redrawn[0] != redrawn[1]
    other = fsdd.load_splits(cfg(fsdd_dir, protocol="dmel", seed=0, split_seed=7)).ids_test
    assert other != fixed[0].ids_test
