#!/usr/bin/env bash
# One device session's whole GPU check, bounded (~9 min): the GPU tests, then MODE=quick benchmarks/run_gpu.sh.
# Rehearsed on a CPU copy of the device's software (Python 3.12, torch 2.11.0+cu130, numpy 2.5.2, onnx 1.23.1,
# onnxruntime 1.30.0 CPU, PyAV 18.1.0 + onnxconverter-common 1.16.0 from carried wheels).
#
# Here, once, in the repository root (the wheels are ~36 MB; the tree that travels must stay under 64 MiB):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av==18.1.0 onnxconverter-common==1.16.0
# Then the device tool's `run`, with carry [".whl"] and timeout_s 600:
#   bash benchmarks/device_check.sh
#
# $OUT gets at most 7 files (the tool brings back 8, at most 2 folders down):
#   tests.log, junit.xml                       the GPU test files, -ra (every failure and skip, with its reason)
#   bench/bench-{style,sr4}.json, bench/status.txt, bench/console.log
#   bench/reports.tar                          bench-*.md and bench-*.png (or: stylize-bench --from-json X.json
#                                              --markdown X.md --plot X.png re-renders them from the JSON)
# The end of stdout repeats the test summary, status.txt and the Markdown tables, so output_tail alone is enough.
#
# Not carried: numba/llvmlite (~45 MB with av over the 64 MiB limit): the CPU colour kernels' tests skip there and a
# CPU frame path would use the torch reference; the GPU frame path (compiled torch) does not need them.
# The style run's end-to-end section reports pipeline_vs_plain (the GPU frame path with the fastest variant vs a
# plain PyAV decode -> encode with the same x264 settings, frame threads).
#
# Environment: OUT (default /tmp/device-out); TOTAL_S whole-script budget (default 510); TEST_S test-phase cap
# (default 240); TESTS gpu (the files below, default) or all (the whole suite: raise TEST_S); MODE (default quick;
# MODE=smoke ALLOW_CPU=1 rehearses this script on a CPU machine); PYTHON.
# Extra arguments go to run_gpu.sh (and so to every stylize-bench run).
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/device-out}
TOTAL_S=${TOTAL_S:-510}
TEST_S=${TEST_S:-240}
SITE=${SITE_DIR:-/tmp/site}
export PYTHONUNBUFFERED=1
start=$SECONDS
mkdir -p "$OUT/bench" || { echo "device_check.sh: cannot create $OUT/bench" >&2; exit 1; }

# Carried wheels into a private folder ahead of site-packages (--no-deps: only what the image lacks).
shopt -s nullglob
wheels=(.whl/*.whl)
shopt -u nullglob
if (( ${#wheels[@]} )); then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "${wheels[@]}" || { echo "device_check.sh: installing .whl failed" >&2; exit 1; }
fi
# This checkout imports as stylize_video through a link (the root is the package: pyproject's package-dir).
mkdir -p "$SITE" && ln -sfn "$PWD" "$SITE/stylize_video" || { echo "device_check.sh: cannot link $SITE/stylize_video" >&2; exit 1; }
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
echo "device_check.sh: wheels installed ($(( SECONDS - start )) s)"

# -- 1. GPU tests: each bounded by pytest-timeout (a stuck CUDA call fails one test, the rest still run) ----------
# Plugin autoload off: the image's ~10 pytest plugins (xdist, cov, benchmark, hypothesis, ...) were not rehearsed.
# test_gpu_path: NVDEC with torch's context (current_ctx) + zero-copy end to end, torch.compile + CUDA graphs called
# >= 3 times from a worker thread; test_ort_gpu: ORT on its own stream without syncs (onnxruntime-gpu only);
# test_colour_fused: the compiled colour conversion on CUDA against the reference.
tests=(tests/pipeline/test_gpu_path.py tests/pipeline/test_colour_fused.py tests/pipeline/test_ort_gpu.py
       tests/export/test_tensorrt_gpu.py tests/pipeline/test_backends.py tests/pipeline/test_planes.py
       tests/pipeline/test_job.py tests/live/test_stylizer.py tests/benchmarks/test_gpu.py
       tests/live/test_stream_loopback.py tests/train/test_histogram.py tests/pipeline/test_device_select.py)
present=()
for t in "${tests[@]}"; do [[ -f "$t" ]] && present+=("$t"); done
[[ "${TESTS:-gpu}" == all ]] && present=(tests)  # the whole suite with CUDA present (~2x longer; raise TEST_S)
t0=$SECONDS
# -ra, not -rs: -r is not cumulative (it replaces addopts' -ra), and -rs alone leaves failures out of the summary.
# Per-test bound where pytest-timeout exists (the device image has it); the whole phase is bounded by `timeout` anyway.
per_test=()
"$PY" -c 'import pytest_timeout' 2>/dev/null && per_test=(-p pytest_timeout --timeout 180)
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 timeout -k 10 "$TEST_S" "$PY" -m pytest -q -ra -p no:cacheprovider \
    "${per_test[@]}" -W ignore::DeprecationWarning --junitxml "$OUT/junit.xml" \
    "${present[@]}" > "$OUT/tests.log" 2>&1
test_rc=$?
echo "device_check.sh: tests exit $test_rc ($(( SECONDS - t0 )) s)" | tee -a "$OUT/tests.log"

# -- 2. the benchmark, with what is left of the budget -----------------------------------------------------------
left=$(( TOTAL_S - (SECONDS - start) - 15 ))
(( left >= 120 )) || left=120
bench=/tmp/device-bench
rm -rf "$bench"
MODE=${MODE:-quick} BUDGET_S=$left OUT_DIR=$bench WHEELS=.whl SITE_DIR=$SITE WORK_DIR=/tmp/stylize-bench-work \
    PYTHON="$PY" bash benchmarks/run_gpu.sh "$@"
bench_rc=$?

# -- 3. into $OUT within the tool's file limits -----------------------------------------------------------------
for f in bench-style.json bench-sr4.json status.txt console.log; do
    [[ -f "$bench/$f" ]] && cp "$bench/$f" "$OUT/bench/"
done
reports=()
for f in "$bench"/bench-*.md "$bench"/bench-*.png; do [[ -f "$f" ]] && reports+=("$(basename "$f")"); done
(( ${#reports[@]} )) && tar -cf "$OUT/bench/reports.tar" -C "$bench" "${reports[@]}"

# Most important last: the tool's output_tail keeps the final 12,000 characters.
for f in "$bench"/bench-*.md; do echo "===== $(basename "$f") ====="; cat "$f"; done
echo "===== tests (summary) ====="
# No summary section when pytest could not start (or had nothing to report): its last lines instead.
{ sed -n '/short test summary/,$p' "$OUT/tests.log" | grep . || tail -n 15 "$OUT/tests.log"; } | tail -n 40
echo "===== bench status ====="
cat "$bench/status.txt" 2>/dev/null
echo "device_check.sh: tests exit $test_rc, run_gpu.sh exit $bench_rc, $(( SECONDS - start )) s in all"
(( test_rc == 0 && bench_rc == 0 ))
