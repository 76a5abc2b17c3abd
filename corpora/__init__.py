"""Dataset loaders and generators, one module per corpus, each registering a :class:`corpora.registry.Corpus`
record where it is defined (``dataset_name``, loader, default folder, download hint, cache keys, installer).
Importing this package imports every corpus module, so the registry is complete; a new corpus is a module
plus its line below (docs/extending.md). Downloadable corpora install through ``python -m corpora <name>``."""
from __future__ import annotations

from corpora import synthetic, fsdd, gtzan, fma, esc50, audiomnist, folder, embeddings  # noqa: F401, I001 - each registers its own (this order)
from corpora.registry import CORPORA, get_corpus, list_corpora
from corpora.splits import Splits, per_class_subset

__all__ = ["CORPORA", "Splits", "get_corpus", "list_corpora", "load_splits", "prepare"]


def load_splits(config: dict) -> Splits:
    """Train/valid/test data for ``config["dataset_name"]``; with ``train_per_class`` set, the train split is
    a seeded stratified subset of that many examples per class (seeded by ``seed``, nested across sizes;
    :func:`corpora.splits.per_class_subset`), valid and test whole."""
    splits = get_corpus(config["dataset_name"]).load_splits(config)
    per_class = config.get("train_per_class")
    if per_class is None:
        return splits
    return splits.train_subset(per_class_subset(splits.y_train.numpy(), int(per_class), int(config["seed"])))


def prepare(configs: list[dict]) -> int:
    """Build the decoded-audio cache of every distinct data setting in ``configs`` now, in this
    process (all cores, with a progress bar), so trials only open it. Returns the number of
    settings prepared; corpora without a cache are skipped."""
    seen = set()
    for config in configs:
        keys = get_corpus(config["dataset_name"]).cache_keys
        if keys is None:
            continue
        setting = (config["dataset_name"], *(str(config[k]) for k in keys))
        if setting not in seen:
            seen.add(setting)
            load_splits(config)
    return len(seen)
