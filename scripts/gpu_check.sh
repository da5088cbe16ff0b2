#!/usr/bin/env bash
# The GPU path in one run (about 13 minutes on one H100/H200 with every step): the tests marked
# `gpu`, the ResNet-18 throughput benchmark at 224 px (fp32, channels_last, bf16 autocast,
# torch.compile), CIFAR-10 pretraining with the default recipe (64 px, torch.compile), a linear
# probe of each stage of the new weights, the three-regime experiment from those weights with the
# CUDA defaults (96 px, three seeds), and the trainer against the tutorial loop at 96 px.
#
#   scripts/gpu_check.sh OUT_DIR CIFAR10_ZIP
#
# OUT_DIR receives environment.txt, one log per step, throughput.json, pretrain/, experiment/
# and summary.md (each step: status, seconds, command). CIFAR10_ZIP is cifar10-jpg.zip (or its
# extracted folder); copy it into the repository first on a machine without /work/shared.
# Each step has its own time limit (LIMIT_* below); a step that fails or runs out of time is
# recorded and the next step still runs. STEPS chooses the steps (default: all of them).
#
# Environment: PYTHON (default .venv/bin/python, else python3); STEPS (default "gpu-tests
# throughput pretrain probe experiment trainer"); PRETRAIN_ARGS and EXPERIMENT_ARGS are appended
# to those commands (e.g. PRETRAIN_ARGS="--epochs 10 --label-smoothing 0.1").
#
# Exit status:
#   0  every step ran and passed
#   1  at least one step failed or ran out of time (see OUT_DIR/summary.md)
#   2  usage error (missing or wrong arguments); nothing was run
#   3  no CUDA device: only environment.txt was written, every GPU step was skipped
set -u -o pipefail

EXIT_FAILED=1
EXIT_USAGE=2
EXIT_NO_CUDA=3
# Seconds each step may take (13 min in all).
LIMIT_TESTS=45
LIMIT_THROUGHPUT=120
LIMIT_PRETRAIN=240
LIMIT_PROBE=60
LIMIT_EXPERIMENT=150
LIMIT_TRAINER=120
STEPS=${STEPS:-gpu-tests throughput pretrain probe experiment trainer}

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit "$EXIT_USAGE"
}

[ $# -eq 2 ] || usage
OUT=$1
CIFAR=$2
if [ ! -e "$CIFAR" ]; then
    echo "error: CIFAR-10 data '$CIFAR' not found; give the path of cifar10-jpg.zip (copy it into the repository on a device machine)." >&2
    exit "$EXIT_USAGE"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT" || exit "$EXIT_USAGE"
OUT=$(cd "$OUT" && pwd)
CIFAR=$(cd "$(dirname "$CIFAR")" && pwd)/$(basename "$CIFAR")
cd "$ROOT" || exit "$EXIT_USAGE"

# One Python start: record the environment, and exit 0 only when CUDA is usable.
"$PYTHON" - >"$OUT/environment.txt" 2>&1 <<'PY'
import platform, subprocess, sys, time
import torch
print("date:", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
print("host:", platform.node())
print("commit:", subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown")
cpu = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
print("cpu:", cpu[0] if cpu else platform.processor(), f"({len(cpu)} logical)")
print("python:", sys.version.split()[0])
print("torch:", torch.__version__, "cuda:", torch.version.cuda)
print("cuda available:", torch.cuda.is_available())
for i in range(torch.cuda.device_count()):
    print(f"gpu {i}:", torch.cuda.get_device_name(i))
sys.exit(0 if torch.cuda.is_available() else 1)
PY
cuda=$?
command -v nvidia-smi >/dev/null && nvidia-smi >>"$OUT/environment.txt" 2>&1

if [ "$cuda" -ne 0 ]; then
    message="no CUDA device: torch.cuda.is_available() is False (see $OUT/environment.txt). Skipped every GPU step (gpu tests, throughput at 224 px, CIFAR-10 pretraining, probes, experiment at 96 px, trainer vs tutorial); run this script on a machine with an NVIDIA GPU."
    echo "$message" | tee "$OUT/summary.md"
    exit "$EXIT_NO_CUDA"
fi

# Resumable training checkpoints are large and not results: they go to a scratch folder.
RUNS=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_runs.XXXXXX")
printf '# GPU check\n\n| step | status | seconds | command |\n|---|---|---:|---|\n' >"$OUT/summary.md"
failed=0

# step NAME LIMIT COMMAND...: run COMMAND with a time limit, log to OUT/NAME.log, record the result.
step() {
    local name=$1 limit=$2 status start seconds
    shift 2
    case " $STEPS " in *" $name "*) ;; *) echo "| $name | not chosen (STEPS) | | |" >>"$OUT/summary.md"; return ;; esac
    echo "== $name (limit ${limit}s): $*"
    start=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    status=$?
    seconds=$(($(date +%s) - start))
    case $status in
        0) result=passed ;;
        124 | 137) result="out of time (${limit}s)"; failed=1 ;;
        *) result="failed (exit $status)"; failed=1 ;;
    esac
    echo "   $result in ${seconds}s; log: $OUT/$name.log"
    tail -n 3 "$OUT/$name.log" | sed 's/^/   | /'
    echo "| $name | $result | $seconds | \`$*\` |" >>"$OUT/summary.md"
}

step gpu-tests "$LIMIT_TESTS" "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests
step throughput "$LIMIT_THROUGHPUT" "$PYTHON" bench/resnet_throughput.py --device cuda --image-size 224 \
    --batch-size 256 --steps 10 --repeats 3 --warmup 3 --json "$OUT/throughput.json"
# shellcheck disable=SC2086  # PRETRAIN_ARGS / EXPERIMENT_ARGS are word lists on purpose
step pretrain "$LIMIT_PRETRAIN" "$PYTHON" -m course_lib pretrain --source cifar10 --data "$CIFAR" --device cuda \
    --compile --out "$OUT/pretrain/resnet18-cifar10.pt" --run-dir "$RUNS/pretrain" ${PRETRAIN_ARGS:-}
# The new weights when pretraining made them, else the shipped ones.
WEIGHTS=()
[ -f "$OUT/pretrain/resnet18-cifar10.pt" ] && WEIGHTS=(--weights "$OUT/pretrain/resnet18-cifar10.pt")
step probe "$LIMIT_PROBE" "$PYTHON" -m course_lib probe --device cuda --out "$OUT/probes" "${WEIGHTS[@]}"
# shellcheck disable=SC2086
step experiment "$LIMIT_EXPERIMENT" "$PYTHON" -m course_lib experiment --device cuda --seeds 0 1 2 \
    --out "$OUT/experiment" --runs "$RUNS/experiment" "${WEIGHTS[@]}" ${EXPERIMENT_ARGS:-}
step trainer "$LIMIT_TRAINER" "$PYTHON" bench/trainer_vs_tutorial.py --device cuda --epochs 3 --workers 8

if grep -q "^|" "$OUT/throughput.log" 2>/dev/null; then
    printf '\n## ResNet-18 throughput\n\n' >>"$OUT/summary.md"
    sed -n '/^# ResNet-18 throughput/,/^worst ratio/p' "$OUT/throughput.log" | sed 's/^# //' >>"$OUT/summary.md"
fi
echo "summary: $OUT/summary.md"
if [ "$failed" -ne 0 ]; then exit "$EXIT_FAILED"; fi
exit 0
