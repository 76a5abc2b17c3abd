"""Write the musicnn test fixtures with the ORIGINAL TensorFlow graph (the ``musicnn==0.1.0`` wheel's models.py).

Runs in a TensorFlow environment of its own, never the project's (TF is not a project dependency). The
fixtures in ``tests/data/musicnn/`` were made on a CPU with Python 3.11.7, tensorflow-cpu 2.21.0 and tf-keras
2.21.0 (which pulls in tensorflow 2.21.0; TF 2.16+ serves ``tf.compat.v1.layers`` from tf-keras only, under
``TF_USE_LEGACY_KERAS=1``, which this script sets), numpy 2.4.6, librosa 0.11.0 and soundfile 0.14.0::

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu tf-keras numpy librosa soundfile
    /tmp/tfenv/bin/python tools/musicnn_reference.py --wheel /tmp/mnn/musicnn-0.1.0-py3-none-any.whl

``--wheel``: the wheel, or a folder it is unpacked in (holding ``musicnn/``). Rerunnable: it rewrites

* ``tests/data/musicnn/tiny/``: small randomly initialised checkpoints of the same graphs, built from the
  wheel's own ``frontend``/``midend``/``backend`` and ``vgg`` functions with narrow layers (seeded; every
  variable, batch-norm moving statistics included, set to random values so that a wrong mapping shows),
  saved by ``tf.compat.v1.train.Saver`` as ``musicnn.*`` and ``vgg.*``, and ``tiny.npz``: a seeded random
  log-mel input ``x`` ``(2, 187, 96)`` and every layer of both graphs on it (keys ``musicnn/<layer>``,
  ``vgg/<layer>``), with the widths used;
* ``tests/data/musicnn/reference.npz``: a 6 s synthetic clip (a chirp with noise, seeded, stored as int16
  ``waveform`` at 16 kHz), the extractor's own input patches of it (``batch``: its ``batch_data`` on the
  clip written as a 16-bit WAV), and the outputs of the four pretrained models on them
  (``<model>/<layer>``), the graphs built as the extractor builds them and restored without its silent
  ``except``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "musicnn"
SR, N_FRAMES, N_MELS = 16000, 187, 96
# the tiny graphs: int(0.1 * 128) = 12 timbral and int(0.1 * 32) = 3 temporal filters, as the port computes them
TINY = {"frontend_scale": 0.1, "midend_filters": 8, "backend_units": 16, "n_classes": 10, "vgg_filters": 4}


def clip(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """``(samples,)`` int16 at 16 kHz: a log chirp from 60 Hz to 6 kHz whose level rises from 0.02 to 0.08
    (below the float16 overflow of the extractor's input), plus white noise at 0.005."""
    t = np.arange(int(seconds * SR)) / SR
    f0, f1 = 60.0, 6000.0
    phase = 2 * np.pi * f0 * seconds / np.log(f1 / f0) * ((f1 / f0) ** (t / seconds) - 1)
    y = np.linspace(0.02, 0.08, len(t)) * np.sin(phase) + 0.005 * np.random.default_rng(seed).standard_normal(len(t))
    return np.round(y * 32767).astype(np.int16)


def _tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message="`tf.layers.", category=UserWarning)  # the wheel's TF-1 layers
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    return tf


def tiny_musicnn(tf, models, x, is_training):
    """The wheel's ``build_musicnn`` with the ``TINY`` widths (it fixes the front-end's to 1.6 itself)."""
    front = models.frontend(x, is_training, N_MELS, num_filt=TINY["frontend_scale"], type="7774timbraltemporal")
    mid = models.midend(tf.concat(front, 2), is_training, TINY["midend_filters"])
    logits, penultimate, mean_pool, max_pool = models.backend(tf.concat(mid, 2), is_training, TINY["n_classes"],
                                                              TINY["backend_units"], type="globalpool_dense")
    return {"taggram": tf.nn.sigmoid(logits), "penultimate": penultimate,
            "mean_pool": tf.squeeze(mean_pool, [2]), "max_pool": tf.squeeze(max_pool, [2]),
            "timbral": tf.concat(front[:2], 2), "temporal": tf.concat(front[2:], 2),
            **{f"cnn{i}": tf.squeeze(mid[i], [3]) for i in (1, 2, 3)}}


def tiny_vgg(tf, models, x, is_training):
    logits, *pools = models.vgg(x, is_training, TINY["n_classes"], TINY["vgg_filters"])
    return {"taggram": tf.nn.sigmoid(logits), **{f"pool{i}": p for i, p in enumerate(pools[:4], start=1)},
            "pool5": tf.compat.v1.layers.flatten(pools[4])}


def randomize(tf, sess, rng: np.random.Generator) -> None:
    """Give every variable seeded random values (TF's own initializers are not seeded): batch-norm scales and
    variances in [0.5, 2], other batch-norm and bias values around 0, kernels Glorot-uniform as TF draws them."""
    for var in tf.compat.v1.global_variables():
        shape, name = var.shape.as_list(), var.op.name
        if name.endswith(("gamma", "moving_variance")):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith(("beta", "moving_mean", "bias")):
            value = rng.normal(0.0, 0.3, shape)
        else:  # a kernel (..., in, out)
            receptive = int(np.prod(shape[:-2]))
            limit = np.sqrt(6 / (receptive * (shape[-2] + shape[-1])))
            value = rng.uniform(-limit, limit, shape)
        sess.run(var.assign(value.astype(np.float32)))


def write_tiny(tf, models) -> None:
    rng = np.random.default_rng(0)
    x_value = rng.uniform(0.0, 4.0, (2, N_FRAMES, N_MELS)).astype(np.float16)
    out = {"x": x_value, **{k: np.array(v) for k, v in TINY.items()}}
    (OUT / "tiny").mkdir(parents=True, exist_ok=True)
    for kind, builder in (("musicnn", tiny_musicnn), ("vgg", tiny_vgg)):
        graph = tf.Graph()
        with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
            x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, N_MELS])
            is_training = tf.compat.v1.placeholder(tf.bool)
            layers = builder(tf, models, x, is_training)
            sess.run(tf.compat.v1.global_variables_initializer())
            randomize(tf, sess, rng)
            tf.compat.v1.train.Saver().save(sess, str(OUT / "tiny" / kind), write_meta_graph=False, write_state=False)
            values = sess.run(layers, {x: x_value, is_training: False})
        out.update({f"{kind}/{name}": value for name, value in values.items()})
    np.savez_compressed(OUT / "tiny" / "tiny.npz", **out)


def write_reference(tf, models, extractor, weights: Path) -> None:
    import soundfile as sf

    waveform = clip()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        sf.write(wav, waveform, SR, subtype="PCM_16")
        batch, _ = extractor.batch_data(str(wav), N_FRAMES, N_FRAMES)
    if not np.isfinite(batch).all():
        raise SystemExit("the clip overflows the extractor's float16 input; lower its level")
    out = {"waveform": waveform, "batch": batch, "tf_version": np.array(tf.__version__)}
    for name in ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"):
        graph = tf.Graph()
        with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
            with tf.name_scope("model"):  # as the extractor does
                x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, N_MELS])
                is_training = tf.compat.v1.placeholder(tf.bool)
                outputs = models.define_model(x, is_training, name, 50)
                taggram = tf.nn.sigmoid(outputs[0])
            if name.endswith("vgg"):
                layers = {"taggram": taggram, "pool5": tf.compat.v1.layers.flatten(outputs[5])}
            else:
                layers = {"taggram": taggram, "mean_pool": outputs[6], "max_pool": outputs[7],
                          "penultimate": outputs[8]}
            tf.compat.v1.train.Saver().restore(sess, str(weights / name) + "/")  # raises if a variable is absent
            values = sess.run(layers, {x: batch, is_training: False})
        out.update({f"{name}/{layer}": value for layer, value in values.items()})
    np.savez_compressed(OUT / "reference.npz", **out)


def unpacked(wheel: Path, tmp: str) -> Path:
    """The folder holding the wheel's ``musicnn`` package (``wheel`` itself when it is a folder)."""
    if wheel.is_dir():
        return wheel
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp)
    return Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, required=True,
                        help="musicnn-0.1.0-py3-none-any.whl or the folder it is unpacked in")
    args = parser.parse_args()
    tf = _tf()
    with tempfile.TemporaryDirectory() as tmp:
        root = unpacked(args.wheel, tmp)
        sys.path.insert(0, str(root))
        from musicnn import extractor, models  # the wheel's own code

        write_tiny(tf, models)
        write_reference(tf, models, extractor, root / "musicnn")
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(OUT.parent.parent.parent)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
