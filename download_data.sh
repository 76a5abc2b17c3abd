#!/bin/sh
# Download datasets into data/. Usage: sh download_data.sh [name ...]   (default: fsdd)
# The names are the registered corpora's downloads (python main.py --list=datasets; a dataset_name works too),
# and musicnn: the pretrained musicnn weights (python -m corpora --help lists them all).
# Every download resumes after an interruption, verifies the content and installs atomically; a rerun does nothing.
#   FSDD_URL        source of the FSDD zip: any URL (file:// too) or a local path (offline mirrors)
#   FSDD_VERSION    1.0.8 (default; 1,500 recordings, into data/audio-mnist) or 1.0.10 (3,000)
#   FSDD_DIR        destination (default data/audio-mnist for 1.0.8, data/fsdd-v1.0.10 for 1.0.10)
#   GTZAN_URL       source of genres.tar.gz (default the Hugging Face copy marsyas/gtzan): URL, file:// or a path
#   GTZAN_DIR       destination (default data/gtzan)
#   FMA_URL         base holding fma_metadata.zip, fma_small.zip, ...: URL, file:// folder or a local folder
#   FMA_SUBSETS     FMA audio subsets, e.g. "small medium" (default small); FMA_DIR destination (default data/fma)
#   ESC50_URL       ESC-50 repository zip (default github.com/karolpiczak/ESC-50, master): URL, file:// or a path
#   ESC50_DIR       destination (default data/esc50)
#   AUDIOMNIST_URL  AudioMNIST repository zip, ~1 GB (default github.com/soerenab/AudioMNIST, master)
#   AUDIOMNIST_DIR  destination (default data/audiomnist60; the grid is audiomnist60, not FSDD's audio_mnist)
#   MUSICNN_URL     `musicnn` (pretrained weights, not a dataset): the musicnn-0.1.0 wheel, a URL, file:// or a path
#                   (default: pip downloads it); its sha256 is checked against corpora/checksums/musicnn-0.1.0.sha256
#   MUSICNN_DIR     destination of the four checkpoints (default data/musicnn, where the musicnn embedding reads them)
# Each corpus module reads its own variables (python -m corpora <name> --help).
set -e
cd "$(dirname "$0")"
[ -x "${VENV:-.venv}/bin/python" ] || sh setup_env.sh
PY="${VENV:-.venv}/bin/python"
[ $# -gt 0 ] || set -- fsdd
for dataset in "$@"; do
    "$PY" -m corpora "$dataset"
done
