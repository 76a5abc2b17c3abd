"""Download a dataset: ``python -m corpora <dataset> [options]`` (what ``download_data.sh`` runs).

    python -m corpora fsdd [--version 1.0.8] [--dest data/audio-mnist] [--source URL_OR_PATH]
    python -m corpora gtzan [--dest data/gtzan] [--source URL_OR_PATH]
    python -m corpora fma [--subsets small [medium]] [--dest data/fma] [--base URL_OR_FOLDER]
    python -m corpora esc50 [--dest data/esc50] [--source URL_OR_PATH]
    python -m corpora audiomnist [--dest data/audiomnist60] [--source URL_OR_PATH]
    python -m corpora musicnn [--dest data/musicnn] [--source URL_OR_PATH]     (pretrained weights)

Each downloadable corpus's record (``corpora.registry.downloads()``), and each other download's
(``register_download``: the musicnn weights), carries its ``install`` and its options
(``add_download_arguments``, ``install_from_args``). Exit status 1 with a one-line reason when the
download or its content is wrong; nothing is installed then.
"""
from __future__ import annotations

import argparse
import sys

import corpora  # noqa: F401 - fills the registry
import embeddings.musicnn_weights  # noqa: F401 - registers the weights' download
from corpora.registry import downloads
from corpora.download import DownloadError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m corpora", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="dataset", required=True)
    records = downloads()
    for name, corpus in records.items():  # its dataset_name works too (fsdd: audio_mnist)
        aliases = [corpus.name] if corpus.name != name else []
        corpus.add_download_arguments(sub.add_parser(name, aliases=aliases, help=corpus.download_help))
    records.update({corpus.name: corpus for corpus in list(records.values())})
    args = p.parse_args(argv)
    try:
        records[args.dataset].install_from_args(args)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
