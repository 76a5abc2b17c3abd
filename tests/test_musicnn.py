"""embeddings/: the TF checkpoint reader, the musicnn port against the original TF graph, its input, and the
weights' install (``sh download_data.sh musicnn``).

The fixtures come from ``tools/musicnn_reference.py`` (TF 2.21): ``tests/data/musicnn/tiny/`` (small random
checkpoints of the wheel's graphs and their outputs; always run) and ``reference.npz`` (the four pretrained
models' outputs; run when the weights are installed in ``data/musicnn``). Tolerance of port vs TF: the
largest difference in a layer within ``5e-5`` times the larger of 1 and the layer's largest magnitude (float32
sums in another order: measured up to 9e-6 of it with the real weights), far below what a wrong padding,
layout or batch-norm epsilon gives (1e-3 and more).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import zipfile
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from corpora.__main__ import main as corpora_main
from corpora.download import DownloadError
from corpora.registry import downloads
from embeddings import musicnn_weights
from embeddings.musicnn import Musicnn, MusicnnVGG, cut_patches, embed, embedding_model, hop_frames, load_musicnn, \
    musicnn_input, musicnn_patches, patch_frames, tf_state_dict
from embeddings.tf_bundle import CheckpointError, crc32c, read_checkpoint

DATA = Path(__file__).resolve().parent / "data" / "musicnn"
TINY = DATA / "tiny"
WEIGHTS = musicnn_weights.weights_dir()
TOLERANCE = 5e-5  # of max(1, the layer's largest magnitude)
needs_weights = pytest.mark.skipif(not (WEIGHTS / "MSD_vgg" / ".index").is_file(),
                                   reason=f"no musicnn weights in {WEIGHTS} (sh download_data.sh musicnn)")


def assert_close_to_tf(port: np.ndarray, tf: np.ndarray, what: str) -> None:
    assert port.shape == tf.shape, what
    assert np.abs(port - tf).max() <= TOLERANCE * max(1.0, np.abs(tf).max()), what


@pytest.fixture(scope="module")
def tiny() -> dict[str, np.ndarray]:
    return dict(np.load(TINY / "tiny.npz"))


def tiny_module(kind: str, sizes: dict) -> Musicnn | MusicnnVGG:
    if kind == "vgg":
        return MusicnnVGG(filters=int(sizes["vgg_filters"]), n_classes=int(sizes["n_classes"]))
    return Musicnn(frontend_scale=float(sizes["frontend_scale"]), midend_filters=int(sizes["midend_filters"]),
                   backend_units=int(sizes["backend_units"]), n_classes=int(sizes["n_classes"]))


# the checkpoint reader

def test_crc32c_known_values():
    assert crc32c(b"") == 0 and crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    data = np.random.default_rng(0).bytes(100_003)  # several lanes and a tail
    crc = 0xFFFFFFFF
    for byte in data[:5000]:  # bit by bit, the definition
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    assert crc32c(data[:5000]) == crc ^ 0xFFFFFFFF


def test_reader_reads_the_tiny_checkpoints():
    variables = read_checkpoint(TINY / "musicnn")
    assert variables["conv2d/kernel"].shape == (7, 38, 1, 12) and variables["conv2d/kernel"].dtype == np.float32
    assert variables["conv2d_2/kernel"].shape == (128, 1, 1, 3)  # the first temporal conv
    assert variables["dense_1/kernel"].shape == (16, 10) and variables["batch_normalization_9/gamma"].shape == (114,)
    assert len(variables) == 11 * 4 + 8 * 2 + 2 * 2  # batch norms, convs, denses
    vgg = read_checkpoint(TINY / "vgg")
    assert {f"{i}CNN/kernel" for i in range(1, 6)} <= set(vgg) and vgg["dense/kernel"].shape == (8, 10)


def test_reader_refuses_wrong_files_in_one_line(tmp_path):
    for suffix in (".index", ".data-00000-of-00001"):
        (tmp_path / f"m{suffix}").write_bytes((TINY / f"musicnn{suffix}").read_bytes())
    data = tmp_path / "m.data-00000-of-00001"
    good = data.read_bytes()
    cases = {
        "not a TF checkpoint index": lambda: (tmp_path / "m.index").write_bytes(b"no table here" * 10),
        "fails its CRC-32C check": lambda: data.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:]),
        "past the end of its data file": lambda: data.write_bytes(good[:1000]),
        "data file m.data-00000-of-00001 is missing": lambda: data.unlink(),
    }
    index = (tmp_path / "m.index").read_bytes()
    for message, spoil in cases.items():
        spoil()
        with pytest.raises(CheckpointError, match=message) as err:
            read_checkpoint(tmp_path / "m")
        assert "\n" not in str(err.value)
        (tmp_path / "m.index").write_bytes(index)
        data.write_bytes(good)
    broken = bytearray(index)
    broken[40] ^= 0xFF  # inside the data block
    (tmp_path / "m.index").write_bytes(bytes(broken))
    with pytest.raises(CheckpointError, match="a block fails its CRC-32C check"):
        read_checkpoint(tmp_path / "m")
    with pytest.raises(CheckpointError, match="no TF checkpoint index at"):
        read_checkpoint(tmp_path / "absent")


# the port against TF's graph

@pytest.mark.parametrize("kind", ["musicnn", "vgg"])
def test_port_matches_tf_on_a_random_checkpoint(tiny, kind):
    module = tiny_module(kind, tiny)
    module.load_state_dict(tf_state_dict(module, read_checkpoint(TINY / kind)))
    with torch.no_grad():
        out = module.eval()(torch.from_numpy(tiny["x"].astype(np.float32)))
    layers = {key.split("/", 1)[1] for key in tiny if key.startswith(f"{kind}/")}
    assert layers == set(out)
    for layer in layers:
        assert_close_to_tf(out[layer].numpy(), tiny[f"{kind}/{layer}"], f"{kind} {layer}")


def test_the_random_checkpoint_tells_a_wrong_batch_norm_epsilon(tiny):
    """The moving statistics of the tiny checkpoint are random, so PyTorch's default epsilon fails."""
    module = tiny_module("musicnn", tiny)
    module.load_state_dict(tf_state_dict(module, read_checkpoint(TINY / "musicnn")))
    for layer in module.modules():
        if isinstance(layer, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            layer.eps = 1e-5
    with torch.no_grad():
        out = module.eval()(torch.from_numpy(tiny["x"].astype(np.float32)))
    with pytest.raises(AssertionError):
        assert_close_to_tf(out["penultimate"].numpy(), tiny["musicnn/penultimate"], "penultimate")


def test_the_mapping_names_missing_unexpected_and_misshapen_variables():
    variables = read_checkpoint(TINY / "musicnn")
    with pytest.raises(ValueError, match=r"conv2d/kernel of shape \(7, 38, 1, 12\) does not fit timbral.0.conv.weight"):
        tf_state_dict(Musicnn(), variables)
    module = Musicnn(frontend_scale=0.1, midend_filters=8, backend_units=16, n_classes=10)
    less = {k: v for k, v in variables.items() if k != "dense/bias"}
    with pytest.raises(ValueError, match="missing dense/bias; unexpected none"):
        tf_state_dict(module, less)
    more = {**variables, "extra/kernel": np.zeros(1), "dense/bias/Adam": np.zeros(1), "beta1_power": np.zeros(())}
    with pytest.raises(ValueError, match="missing none; unexpected extra/kernel$"):
        tf_state_dict(module, more)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return dict(np.load(DATA / "reference.npz"))


@needs_weights
@pytest.mark.parametrize("name", musicnn_weights.MODEL_NAMES)
def test_pretrained_port_matches_tf(reference, name):
    """The extractor's patches of the clip, and every stored layer of the pretrained model, end to end."""
    waveform = reference["waveform"].astype(np.float32) / 32768  # as soundfile reads the 16-bit WAV
    np.testing.assert_array_equal(musicnn_patches(waveform, 16000), reference["batch"].astype(np.float32))
    model = load_musicnn(name)
    layers = [key.split("/", 1)[1] for key in reference if key.startswith(f"{name}/")]
    assert {"taggram"} < set(layers)
    for layer in layers:
        assert_close_to_tf(embed(model, waveform, 16000, layer), reference[f"{name}/{layer}"], f"{name} {layer}")


@needs_weights
def test_embedding_model_record():
    record = embedding_model("MSD_musicnn")
    assert (record.sample_rate, record.patch_seconds) == (16000, 3.0)
    assert record.layers["taggram"] == 50 and record.layers["max_pool"] == 753 and record.layers["penultimate"] == 200
    assert record.layers["cnn3"] == 187 * 64
    rows = record.embed(np.zeros(7 * 22050, dtype=np.float32), 22050, "max_pool", hop_seconds=1.0)
    assert rows.shape == (5, 753) and rows.dtype == np.float32  # starts at 0, 1, 2, 3, 4 s (61 frames apart)


# the input

def extractor_input(path: Path) -> np.ndarray:
    """The extractor's ``batch_data`` input, written out here from its code (librosa.load at 16 kHz)."""
    audio, sr = librosa.load(path, sr=16000)
    rep = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=256, n_fft=512, n_mels=96).T
    rep = rep.astype(np.float16)
    with np.errstate(over="ignore"):
        return np.log10(10000 * rep + 1)


@pytest.mark.parametrize("rate", [16000, 22050])
def test_musicnn_input_is_the_extractors(tmp_path, rate):
    rng = np.random.default_rng(rate)
    t = np.arange(2 * rate) / rate
    waveform = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    sf.write(tmp_path / "clip.wav", waveform, rate, subtype="FLOAT")
    expected = extractor_input(tmp_path / "clip.wav")
    assert np.isinf(expected).any(), "the tone is loud enough to overflow float16"
    np.testing.assert_array_equal(musicnn_input(waveform, rate, saturate=False), expected.astype(np.float32))
    saturated = musicnn_input(waveform, rate)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(saturated[finite], expected[finite].astype(np.float32))
    assert np.allclose(saturated[~finite], np.log10(65505.0), atol=2e-3) and np.isfinite(saturated).all()


def test_patches_follow_the_extractor():
    assert patch_frames(3.0) == 187 and hop_frames(None) == 187 and hop_frames(1.0) == 61
    spectrogram = np.arange(400 * 2, dtype=np.float32).reshape(400, 2)
    patches = cut_patches(spectrogram, 187, 61)
    assert patches.shape == (4, 187, 2) and patches[1, 0, 0] == spectrogram[61, 0]
    with pytest.raises(ValueError, match="under one frame"):
        hop_frames(0.01)


def test_a_clip_shorter_than_a_patch_is_zero_padded_to_one():
    noise = 0.01 * np.random.default_rng(0).standard_normal(8000).astype(np.float32)  # 0.5 s
    short = musicnn_patches(noise, 16000)
    assert short.shape == (1, 187, 96) and (short[0, 100:] == 0).all() and short[0, 0].max() > 0


def test_vgg_takes_three_second_patches_only():
    with pytest.raises(ValueError, match="187 frames"):
        embed(MusicnnVGG(filters=2), np.zeros(16000 * 5, dtype=np.float32), 16000, "taggram", patch_seconds=2.0)


# the weights' install

def make_wheel(path: Path, models=musicnn_weights.MODEL_NAMES) -> Path:
    """A fake musicnn wheel: the package's code, its metadata, and the checkpoint files of ``models``."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("musicnn/__init__.py", "")
        zf.writestr("musicnn/extractor.py", "# code, not weights\n")
        zf.writestr("musicnn-0.1.0.dist-info/METADATA", "Name: musicnn\n")
        for name in models:
            for file in (*musicnn_weights.CHECKPOINT_FILES, "config.json"):
                zf.writestr(f"musicnn/{name}/{file}", f"{name} {file}")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_install_from_a_file_url_verifies_and_is_idempotent(tmp_path, capsys):
    wheel = make_wheel(tmp_path / "musicnn-0.1.0-py3-none-any.whl")
    dest = tmp_path / "out" / "musicnn"
    assert musicnn_weights.install(dest, wheel.as_uri(), sha256(wheel)) == dest.resolve()
    assert sorted(p.name for p in dest.iterdir()) == sorted(musicnn_weights.MODEL_NAMES)
    assert (dest / "MSD_vgg" / ".index").read_text() == "MSD_vgg .index"
    assert (dest / "MTT_vgg" / "config.json").is_file() and not (dest / "extractor.py").exists()
    assert leftovers(dest.parent) == []
    stamp = (dest / "MTT_musicnn" / ".index").stat().st_mtime_ns
    wheel.unlink()  # a rerun does not need the source
    musicnn_weights.install(dest, wheel.as_uri(), "not even read")
    assert "nothing to do" in capsys.readouterr().out
    assert (dest / "MTT_musicnn" / ".index").stat().st_mtime_ns == stamp


def test_install_from_a_path_through_the_command_line(tmp_path):
    wheel = make_wheel(tmp_path / "musicnn.whl")
    dest = tmp_path / "weights"
    assert "musicnn" in downloads()
    assert corpora_main(["musicnn", "--source", str(wheel), "--dest", str(dest), "--sha256", sha256(wheel)]) == 0
    assert musicnn_weights.problems(dest) == []


@pytest.mark.parametrize("case", ["checksum", "incomplete", "not a zip"])
def test_a_wrong_wheel_installs_nothing(tmp_path, case):
    wheel = make_wheel(tmp_path / "musicnn.whl", musicnn_weights.MODEL_NAMES[:3 if case == "incomplete" else 4])
    if case == "not a zip":
        wheel.write_bytes(b"not a zip")
    dest = tmp_path / "out" / "musicnn"
    expected = None if case == "checksum" else sha256(wheel)  # None: the committed one, not this fake's
    message = {"checksum": "has sha256 .* not f38a4890", "incomplete": "lacks .* missing MSD_vgg/.index",
               "not a zip": "not a valid zip archive"}[case]
    with pytest.raises(DownloadError, match=message):
        musicnn_weights.install(dest, str(wheel), expected)
    assert not dest.exists() and leftovers(dest.parent) == []


def test_download_data_sh_refuses_a_wheel_of_another_checksum(tmp_path, root):
    wheel = make_wheel(tmp_path / "musicnn-0.1.0-py3-none-any.whl")
    env = {**os.environ, "MUSICNN_URL": wheel.as_uri(), "MUSICNN_DIR": str(tmp_path / "musicnn")}
    out = subprocess.run(["sh", "download_data.sh", "musicnn"], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 1 and "has sha256" in out.stderr and "Nothing was installed" in out.stderr
    assert not (tmp_path / "musicnn").exists() and leftovers(tmp_path) == []


def test_missing_weights_say_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="sh download_data.sh musicnn"):
        load_musicnn("MTT_musicnn", tmp_path)
    with pytest.raises(ValueError, match="unknown musicnn model 'MTT'"):
        load_musicnn("MTT", tmp_path)
