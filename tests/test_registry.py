"""Every registered component is complete: each record carries what the rest of the harness reads from it,
and what it declares holds for the component it describes (built and stepped once here)."""
from __future__ import annotations

import importlib
import re

import pytest
import torch

import corpora
from corpora.registry import CORPORA
from models.classifiers import build_model
from models.registry import FRONTENDS, frontend_label
from registry import Registry, UnknownComponent
from training.config import DEFAULTS, resolve_config
from training.loop import make_optimizer
from tuning.experiments import get_experiment, list_experiments
from tuning.spaces import build_parts, expand_grid
from tuning.validate import check_configs

RATE, N_POINTS = 8000, 4000


# every front-end with its defaults, and the settings that change what its drift() reports
CASES = [(name, {}) for name in FRONTENDS.names()] + [(name, {"leaf_compression": "log_tbn"})
                                                     for name in ("leaf", "efficientleaf")]


@pytest.mark.parametrize("name, extra", CASES)
def test_every_frontend_record_is_complete(name, extra):
    record = FRONTENDS.get(name)
    assert record.description and set(record.defaults) <= set(DEFAULTS)
    cfg = resolve_config({"frontend": name, "model_name": "mel_linear_net", "hop_length": 80, "n_mels": 16,
                          "init_window_ms": 25.0, "dataset_name": "audio_mnist", "sample_rate": RATE, **extra})
    assert isinstance(frontend_label(cfg), str) and frontend_label(cfg)
    assert record.initial_window_ms(cfg, RATE) > 0
    assert record.window_key is None or record.window_key in DEFAULTS
    assert record.problems is None or record.problems(cfg, RATE, N_POINTS) == []
    model = build_model(cfg, N_POINTS, 3, RATE)
    opt = make_optimizer(model, cfg)
    logits, _ = model(torch.randn(4, N_POINTS))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    model.after_step()
    assert set(record.drift_names(cfg)) == set(model.frontend_drift()), "drift() and the record's names differ"
    if not record.needs_sample_rate:  # it claims to build on the synthetic data, so it must
        synthetic = resolve_config({"frontend": name, "model_name": "linear_net", "init_window_ms": None})
        assert build_model(synthetic, 128, 3, None)(torch.randn(2, 128))[0].shape == (2, 3)


def test_every_learnable_frontend_can_have_its_own_learning_rate():
    """``lr_frontend`` puts every learnable front-end parameter in a group of its own (DMEL's lambda keeps
    ``lr_tf``), so SincNet's or LEAF's filters can learn faster than the head."""
    for name in FRONTENDS.names():
        cfg = resolve_config({"frontend": name, "model_name": "mel_linear_net", "hop_length": 80, "n_mels": 16,
                              "init_window_ms": 25.0, "lr_frontend": 0.05, "lr_tf": 0.5})
        model = build_model(cfg, N_POINTS, 3, RATE)
        learnable = {id(p) for p in model.frontend.parameters() if p.requires_grad}
        groups = make_optimizer(model, cfg).param_groups
        assert groups[0]["lr"] == cfg["lr_model"] and not learnable & {id(p) for p in groups[0]["params"]}, name
        own = {id(p): g["lr"] for g in groups[1:] for p in g["params"]}
        assert set(own) == learnable, name
        assert set(own.values()) <= ({0.5} if name == "gaussian" else {0.05}), name


@pytest.mark.parametrize("name", CORPORA.names())
def test_every_corpus_record_is_complete(name):
    corpus = CORPORA.get(name)
    assert corpus.description and callable(corpus.load_splits) and set(corpus.defaults) <= set(DEFAULTS)
    assert set(corpus.cache_keys or ()) <= set(DEFAULTS)
    if corpus.reads_disk:
        assert corpus.download_hint, "a corpus read from disk says how to get it"
    if corpus.download:
        assert corpus.default_dir and corpus.download_help and corpus.dir_env
        assert callable(corpus.add_download_arguments) and callable(corpus.install_from_args)
        assert f"sh download_data.sh {corpus.download}" in corpus.download_hint or corpus.name == "audio_mnist"


@pytest.mark.parametrize("name", list_experiments())
def test_every_experiment_record_is_complete(name):
    experiment = get_experiment(name)
    assert experiment.description and 0 <= experiment.gpu_share <= 1 and experiment.full_epochs >= 1  # 0: CPU only
    assert re.fullmatch(r"[A-Z0-9_]+", experiment.budget_env)
    module = importlib.import_module(experiment.figures or "figures.generic")
    assert callable(module.produce)
    configs = [c for part in build_parts(name, 2, 1) for c in expand_grid(part.space)]
    assert check_configs(configs) == []
    assert {c["dataset_name"] for c in configs} == {experiment.dataset()} <= set(CORPORA)


def test_a_registry_refuses_a_name_twice_and_names_the_known_ones():
    reg = Registry("widget", "add one with register_widget")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        reg.register("a", 2)
    with pytest.raises(UnknownComponent, match=r"unknown widget 'b'; known: a \(add one with register_widget\)"):
        reg.get("b")
    with pytest.raises(KeyError):  # a lookup error for lookups ...
        corpora.get_corpus("nope")
    with pytest.raises(ValueError):  # ... and a value error for config values
        build_model(resolve_config({"frontend": "nope"}), 128, 3)
