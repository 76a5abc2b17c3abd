"""produce_figures.py reads experiments from a URI (file://, and S3 through moto's local server) as from a folder."""
import pandas as pd
import pyarrow.fs
import pytest

import produce_figures
from figures.read import load_experiment, summed_confusion
from tuning.storage import display as display_location, experiment_location
from tests.fixtures import TINY_TRIALS


@pytest.fixture(scope="module")
def storage(tiny_experiment):
    """The session's finished time_frequency experiment in ``<storage>/time_frequency`` (a local folder)."""
    return tiny_experiment


def tables(results_dir):
    """The tables written, without the source line under them (it names where the experiment was read)."""
    return {p.name: "\n".join(ln for ln in p.read_text().splitlines() if "Source: " not in ln)
            for p in sorted((results_dir / "tables").iterdir())}


def sources(results_dir):
    return [ln for p in sorted((results_dir / "tables").glob("*.md")) for ln in p.read_text().splitlines()
            if ln.startswith("Source: ")]


def figures_from(tmp_path, capsys, *args):
    """Run produce_figures.main in this process; return (tables, printed text, results folder)."""
    out = tmp_path / "results"
    assert produce_figures.main(["--split=test", f"--results_dir={out}", *args]) == 0
    return tables(out), capsys.readouterr().out, out


def test_locations():
    assert experiment_location("/a/b", "fma") == "/a/b/fma"
    assert experiment_location("s3://bucket", "fma") == "s3://bucket/fma"
    assert experiment_location("s3://bucket/pre/", "fma") == "s3://bucket/pre/fma"
    assert (experiment_location("s3://bucket/pre?endpoint_override=127.0.0.1:9000&scheme=http", "gtzan")
            == "s3://bucket/pre/gtzan?endpoint_override=127.0.0.1:9000&scheme=http")
    assert experiment_location("file:///abs/rr", "gtzan") == "file:///abs/rr/gtzan"
    assert display_location("s3://bucket/pre/gtzan?secret_key=x&scheme=http") == "s3://bucket/pre/gtzan"


def test_file_uri_gives_the_same_tables(storage, tiny_figures, tmp_path, capsys):
    local, local_out = tables(tiny_figures[0]), tiny_figures[1]  # --ray_root_dir=<storage>
    uri, uri_out, out = figures_from(tmp_path, capsys, f"--storage=file://{storage}")
    assert "test_time_frequency.md" in local and "| linear_net |" in local["test_time_frequency.md"]
    assert uri == local
    assert sources(out) == [sources(out)[0]]
    assert sources(out)[0].startswith(f"Source: file://{storage}/time_frequency; {TINY_TRIALS} of {TINY_TRIALS} trials")
    # a missing experiment is skipped with the same message either way
    assert f"audio_mnist: no experiment at {storage}/audio_mnist; skipped (run main.py --name=audio_mnist)" in local_out
    assert (f"audio_mnist: no experiment at file://{storage}/audio_mnist; skipped (run main.py --name=audio_mnist)"
            in uri_out)


def test_checkpoint_files_through_a_uri(storage):
    df, histories = load_experiment(storage / "time_frequency")
    df_uri, histories_uri = load_experiment(f"file://{storage}/time_frequency")
    assert len(df) == TINY_TRIALS and len(histories_uri) == TINY_TRIALS
    pd.testing.assert_frame_equal(df, df_uri)
    confusion = summed_confusion(df_uri)
    assert confusion is not None and confusion.to_numpy().sum() == TINY_TRIALS * 30  # 30 test signals per trial
    pd.testing.assert_frame_equal(confusion, summed_confusion(df))


def test_s3_gives_the_same_tables(s3, storage, tiny_figures, tmp_path, capsys):
    endpoint, fs = s3
    pyarrow.fs.copy_files(str(storage / "time_frequency"), "results/ray/time_frequency", destination_filesystem=fs)
    uri = f"s3://results/ray?endpoint_override={endpoint}&scheme=http"
    remote, out, _ = figures_from(tmp_path, capsys, f"--storage={uri}")
    assert remote == tables(tiny_figures[0])
    assert "audio_mnist: no experiment at s3://results/ray/audio_mnist; skipped" in out
    df, _ = load_experiment(experiment_location(uri, "time_frequency"))
    assert df["checkpoint_dir"].str.startswith("s3://results/ray/time_frequency/").all()
    local_df, _ = load_experiment(storage / "time_frequency")
    pd.testing.assert_frame_equal(summed_confusion(df), summed_confusion(local_df))
