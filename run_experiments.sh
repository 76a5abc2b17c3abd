#!/bin/sh
# Every registered experiment at its full budget (meant for a GPU box or a Ray cluster; reruns resume), in the
# order `python main.py --list=runs` gives: the experiments of search_spaces.py, each with its budget and data.
# Datasets that are not downloaded are skipped with a message.
#   NUM_SAMPLES      repetitions (seeds) of every grid (default 5; window_search draws its own 30 trials)
#   budgets          MAX_EPOCHS (synthetic), AUDIO_MAX_EPOCHS (FSDD), GTZAN_MAX_EPOCHS, FMA_MAX_EPOCHS,
#                    ESC50_MAX_EPOCHS, AUDIOMNIST_MAX_EPOCHS (defaults: each experiment's full_epochs)
#   data folders     DATA_DIR (FSDD), GTZAN_DIR, FMA_DIR, ESC50_DIR, AUDIOMNIST_DIR (defaults: data/<name>),
#                    EMBEDDINGS_DIR (precomputed .npz embeddings for embedding_heads; default data/embeddings)
#   EXPERIMENTS      a space-separated subset to run, e.g. EXPERIMENTS="time_frequency audio_mnist"
#   MAIN_ARGS        more main.py flags for every experiment, e.g. MAIN_ARGS="--address=HEAD:6379 --storage=/shared/rr"
#                    or a smoke budget MAIN_ARGS="--set n_samples=150" (split on spaces).
set -e
cd "$(dirname "$0")"
PY="${VENV:-.venv}/bin/python"
ROOT=${RAY_ROOT_DIR:-$(pwd)/ray_results}
NUM_SAMPLES=${NUM_SAMPLES:-5}
MAIN_ARGS=${MAIN_ARGS:-}
RUNS=$(mktemp)
trap 'rm -f "$RUNS"' EXIT
"$PY" main.py --list=runs > "$RUNS"
TAB=$(printf '\t')
while IFS="$TAB" read -r name budget_env epochs samples dir_env default_dir download; do
    case " ${EXPERIMENTS:-$name} " in *" $name "*) ;; *) continue ;; esac
    eval "epochs=\${$budget_env:-$epochs}"
    [ "$samples" != "-" ] || samples=$NUM_SAMPLES
    if [ "$dir_env" = "-" ]; then  # generated data: the original command line's --data_dir is accepted and unused
        folder=${DATA_DIR:-$(pwd)/data/audio-mnist}
    else
        eval "folder=\${$dir_env:-$default_dir}"
        if [ ! -d "$folder" ]; then
            if [ "$download" = "-" ]; then
                echo "no data at $folder: skipping $name (put it there, or set $dir_env to its folder)"
            else
                echo "no dataset at $folder: skipping $name (sh download_data.sh $download fetches it)"
            fi
            continue
        fi
        folder=$(cd "$folder" && pwd)
    fi
    # shellcheck disable=SC2086
    "$PY" main.py --num_samples="$samples" --max_epochs="$epochs" --name="$name" \
        --ray_root_dir="$ROOT" $MAIN_ARGS --data_dir="$folder" </dev/null
done < "$RUNS"
