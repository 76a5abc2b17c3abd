#!/bin/sh
# Everything this project can check only on a CUDA GPU, in one command and one report, within 8 minutes on
# one GPU (the steps' time limits and the budget below hold it there; not yet run on a GPU):
#
#     sh benchmarks/gpu_check.sh
#
# Steps, in order, each under its own time limit and all of them within GPU_CHECK_BUDGET_S (480 s):
#   gpu        a GPU torch can use, named; without one the check stops here, with the reason
#   pytest     pytest -m gpu (tests/test_gpu.py: CUDA equals the CPU, bit-exact resume, the memory cap and
#              the cache handed back, no GPU waits in a training step, three trials sharing the GPU)
#   grid16     main.py: a 16-trial time_frequency grid (2 repetitions x trainable/fixed x 4 initial windows,
#              1,000 signals, 20 epochs) sharing the GPU at 1/8 (each trial caps its memory at its share);
#              every trial must finish on cuda:0, several at once
#   grid_step  benchmarks/bench_grid_step.py on CUDA, every registered experiment (as --grid all),
#              GPU_CHECK_JOBS grids at a time (4: process start-up bounds it, not the GPU; a step time may
#              be inflated where two steps met on the GPU, the CUDA memory peaks are each process's own)
#   frontend   benchmarks/bench_frontend.py on CUDA, each setting at a 300 ms window (GPU_CHECK_FRONTEND_ARGS),
#              GPU_CHECK_JOBS settings at a time (each ratio is timed against the reference in its own process);
#              a front-end may fail a setting it does not fit (a ValueError), any other failure fails the step
# Before them, `sh setup_env.sh` makes the venv (.venv, or $VENV) on a fresh copy: a few minutes the first time
# (torch), outside the budget, under GPU_CHECK_SETUP_S (900 s).
# The report, results/gpu_check-<date>-<time>.txt (git-ignored; GPU_CHECK_REPORT names another file), holds each
# step's commands, output, result and time, then a summary; the console shows the same. Exit status 0 when
# every step passed, 1 otherwise.
set -u
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$SELF")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
JOBS=${GPU_CHECK_JOBS:-4}
FRONTEND_ARGS=${GPU_CHECK_FRONTEND_ARGS:---windows_ms 300}
export VENV PY JOBS FRONTEND_ARGS

# Runs one step (`sh gpu_check.sh --step NAME`, under the caller's time limit); its exit status is the step's.
step() {
    set -x
    case $1 in
    gpu)
        "$PY" -c '
import torch
from training.trial import cuda_unusable_reason
reason = cuda_unusable_reason()
if reason is not None:
    raise SystemExit(f"no usable CUDA GPU: {reason}")
p = torch.cuda.get_device_properties(0)
print(f"{torch.cuda.device_count()} GPU(s); cuda:0 is {p.name}, {p.total_memory / 2**30:.0f} GiB; "
      f"torch {torch.__version__} (CUDA {torch.version.cuda})")' ;;
    pytest)
        "$PY" -m pytest -q -m gpu -rs --durations=10 tests ;;
    grid16)
        "$PY" main.py --name=time_frequency --num_samples=2 --max_epochs=20 --gpus_per_trial=0.125 \
            --set model_name=linear_net --set 'init_lambd=[1.276,6.38,12.76,31.9]' --set n_samples=1000 \
            --ray_root_dir="$SCRATCH/rr" || return 1
        "$PY" - "$SCRATCH/rr/time_frequency" <<'EOF'
"""16 finished trials on cuda:0, and how many certainly ran at once (Tune's timestamps are whole seconds:
timestamp <= t < timestamp + 1 for a report at t)."""
import json
import sys
from pathlib import Path

spans, devices, unfinished = [], set(), []
for result in sorted(Path(sys.argv[1]).glob("train_trial*/result.json")):
    rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    devices |= {row["device"] for row in rows}
    if not rows[-1].get("done"):
        unfinished.append(result.parent.name)
    spans.append((rows[0]["timestamp"] - rows[0]["time_this_iter_s"] + 1, rows[-1]["timestamp"]))
together = max((sum(start <= t <= end for start, end in spans) for t, _ in spans), default=0)
print(f"{len(spans)} trials, devices {sorted(devices)}, unfinished {unfinished}; at least {together} ran at once "
      "(1/8 GPU each: at most 8 can)")
sys.exit(0 if len(spans) == 16 and devices == {"cuda:0"} and not unfinished and together >= 2 else 1)
EOF
        ;;
    grid_step)
        grids=$("$PY" main.py --list=experiments | cut -f1) || return 1
        in_parallel grid_step "$grids" '"$PY" benchmarks/bench_grid_step.py --grid "$1" --device cuda --threads 1' ;;
    frontend)
        settings=$("$PY" -c 'import sys; sys.path.insert(0, "benchmarks"); import bench_frontend
print(*bench_frontend.SETTINGS)') || return 1
        in_parallel frontend "$settings" '"$PY" benchmarks/bench_frontend.py --device cuda --settings "$1" $FRONTEND_ARGS' ||
            return 1
        # a front-end fails a setting it does not fit with a ValueError; any other failure (CUDA's) fails the step
        ! grep -h '^- .* at .*: ' "$SCRATCH"/frontend-*.log | grep -v ': ValueError: ' ;;
    *)
        echo "unknown step $1"; return 2 ;;
    esac
}

# in_parallel STEP "ITEMS" COMMAND: COMMAND (sh, the item as $1) for every item, JOBS at a time, each item's output
# in $SCRATCH/STEP-ITEM.log (put into the report after the step, also when its time ran out) and a line in
# $SCRATCH/STEP-failed for each item that failed; fails if any did.
in_parallel() {
    for item in $2; do echo "$item"; done | xargs -P "$JOBS" -I{} sh -c \
        "$3"' >"$SCRATCH/$0-$1.log" 2>&1 || echo "FAILED (exit $?): $0 $1" >>"$SCRATCH/$0-failed"' "$1" {}
    [ ! -s "$SCRATCH/$1-failed" ]
}

if [ "${1:-}" = "--step" ]; then
    step "$2"
    exit $?
fi

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
export SCRATCH
trap 'rm -rf "$SCRATCH"' EXIT
REPORT=${GPU_CHECK_REPORT:-results/gpu_check-$(date +%Y%m%d-%H%M%S).txt}
mkdir -p "$(dirname "$REPORT")"
BUDGET=${GPU_CHECK_BUDGET_S:-480}
SUMMARY=""
FAILED=0

say() { echo "$*" | tee -a "$REPORT"; }

# run NAME LIMIT_S COMMAND...: one step under min(LIMIT_S, what is left of the budget), into the report and the
# console, its result and time into the summary.
run() {
    name=$1 limit=$2
    shift 2
    if [ -n "${DEADLINE:-}" ] && [ "$limit" -gt $((DEADLINE - $(date +%s))) ]; then
        limit=$((DEADLINE - $(date +%s)))
    fi
    if [ "$limit" -le 0 ]; then
        result="not run (the ${BUDGET} s budget is spent)" seconds=0
    else
        say ""
        say "=== $name (at most ${limit} s) ==="
        start=$(date +%s)
        { timeout -k 10 "$limit" "$@"; echo $? >"$SCRATCH/rc"; } 2>&1 | tee -a "$REPORT"
        rc=$(cat "$SCRATCH/rc")
        seconds=$(($(date +%s) - start))
        for log in "$SCRATCH/$name"-*.log "$SCRATCH/$name-failed"; do
            [ -f "$log" ] && { echo "--- ${log##*/}"; cat "$log"; } | tee -a "$REPORT"
        done
        case $rc in
        0) result=PASS ;;
        124 | 137) result="FAIL (its ${limit} s ran out)" ;;
        *) result="FAIL (exit $rc)" ;;
        esac
        say "--- $name: $result in ${seconds} s"
    fi
    [ "$result" = PASS ] || FAILED=1
    SUMMARY="$SUMMARY$(printf '%-10s %6s s  %s' "$name" "$seconds" "$result")
"
}

say "gpu_check $(date '+%Y-%m-%d %H:%M:%S') on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(
    [ -n "$(git status --porcelain 2>/dev/null)" ] && echo ' (with uncommitted changes)'); report: $REPORT"
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | tee -a "$REPORT"
# not_run WHY NAME...: steps left out, into the summary
not_run() {
    why=$1
    shift
    for name in "$@"; do
        SUMMARY="$SUMMARY$(printf '%-10s %6s    %s' "$name" - "not run ($why)")
"
    done
}

run setup "${GPU_CHECK_SETUP_S:-900}" sh setup_env.sh
DEADLINE=$(($(date +%s) + BUDGET))
if [ "$FAILED" = 1 ]; then
    not_run "no venv" gpu pytest grid16 grid_step frontend
else
    run gpu 120 sh "$SELF" --step gpu
    if [ "$FAILED" = 1 ]; then
        not_run "no usable GPU" pytest grid16 grid_step frontend
    else
        run pytest 240 sh "$SELF" --step pytest
        run grid16 180 sh "$SELF" --step grid16
        run grid_step 240 sh "$SELF" --step grid_step
        run frontend 180 sh "$SELF" --step frontend
    fi
fi
say ""
say "=== summary (budget ${BUDGET} s after setup) ==="
printf '%s' "$SUMMARY" | tee -a "$REPORT"
if [ "$FAILED" = 0 ]; then
    say "gpu_check: PASS; report: $REPORT"
else
    say "gpu_check: FAIL; report: $REPORT"
fi
exit "$FAILED"
