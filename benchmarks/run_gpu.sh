#!/usr/bin/env bash
# The GPU benchmark in one command (H100 / H200 / any CUDA machine):
#
#   benchmarks/run_gpu.sh                       # random-weight style + x4 SR runs, the full matrix
#   MODE=quick benchmarks/run_gpu.sh            # shorter: 2 sizes, fewer iterations, no torch.compile
#   MODEL=mosaic.pth benchmarks/run_gpu.sh      # a trained style checkpoint instead of random weights
#   benchmarks/run_gpu.sh --backends torch-fp32,tensorrt-fp16   # extra options go to every stylize-bench run
#
# Results: benchmarks/results/<UTC date>_<gpu>/bench-{style,sr4}.{json,md,png} plus the console log.
# Nothing is installed unless INSTALL=1 (then: pip install -e '.[gpu,tensorrt,dev]'); backends whose
# packages are missing are reported as skipped with the reason, never silently dropped.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
MODE=${MODE:-full}
if [[ "${INSTALL:-0}" == 1 ]]; then
    "$PY" -m pip install -q -e '.[gpu,tensorrt,dev]'
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "run_gpu.sh: torch sees no CUDA device; this script is for a GPU machine" >&2
    exit 1
fi

label=$("$PY" -c 'from benchmarks.machine import collect_machine; print(collect_machine()["label"])')
out="benchmarks/results/$(date -u +%Y-%m-%d)_${label}"
mkdir -p "$out"
work=${WORK_DIR:-$HOME/.cache/stylize-video/bench}

case "$MODE" in
    full)  common=(--iters 50 --warmup 10 --clip-frames 300 --throughput-batches 1,2,4 --throughput-streams 1,2,3)
           style_sizes=360p,720p,1080p,2160p; sr_sizes=180p,270p,540p; style_clip=1080p; sr_clip=270p ;;
    quick) common=(--iters 20 --warmup 5 --clip-frames 120 --throughput-batches 1,4 --throughput-streams 1,2
                   --backends torch-fp16,ort-cuda-fp32,ort-cuda-fp16,ort-trt-fp16,tensorrt-fp16)
           style_sizes=360p,1080p; sr_sizes=270p; style_clip=1080p; sr_clip=270p ;;
    *) echo "run_gpu.sh: MODE must be full or quick, got $MODE" >&2; exit 1 ;;
esac

if [[ -n "${MODEL:-}" ]]; then style_model=(--model "$MODEL"); else style_model=(--random-weights style); fi

{
    nvidia-smi || true
    echo "== style =="
    "$PY" -m benchmarks.cli "${style_model[@]}" --sizes "$style_sizes" --clip-size "$style_clip" "${common[@]}" \
        --work-dir "$work" \
        --json "$out/bench-style.json" --markdown "$out/bench-style.md" --plot "$out/bench-style.png" "$@"
    echo "== x4 super-resolution =="
    "$PY" -m benchmarks.cli --random-weights sr4 --sizes "$sr_sizes" --clip-size "$sr_clip" "${common[@]}" \
        --work-dir "$work" \
        --json "$out/bench-sr4.json" --markdown "$out/bench-sr4.md" --plot "$out/bench-sr4.png" "$@"
} 2>&1 | tee "$out/console.log"
echo "run_gpu.sh: results in $out"
