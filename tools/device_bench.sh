#!/usr/bin/env bash
# The GPU measurement, for a session lent the device (an H100 or H200 with JAX and CUDA, Python 3.12,
# no Keras, no TensorFlow, nothing to download). The ML package's batch path (decode, compiled forward +
# Grad-CAM, gate, heatmap PNG and overlay JPEG) on 4,000 real radiographs under Keras 3 on JAX, with where the
# time goes, at the GPU worker's batch of 128: one process with 12 decode/render threads, from the originals and
# from working copies (the worker's path), serial and pipelined; the same on 512 of them enlarged to 2,000 pixels;
# then several processes sharing the GPU (CELERY_WORKER_CONCURRENCY) with one or more threads each
# (INFERENCE_THREADS). During the first run py-spy samples the worker's path: what holds Python's GIL, and where
# the time goes (the remaining bottleneck, named).
# Compiled shapes are cached between the runs, so only the first one compiles.
#
#   bash tools/device_bench.sh prepare   # here: Keras and the few wheels the device lacks, and 4,000 training
#                                        # images, into .device/ (git-ignored; about 37 MB)
#   the device tool: run(command="bash tools/device_bench.sh run", carry=[".device"], timeout_s=600)
#   or, with little device time left: "bash tools/device_bench.sh processes" (2 x 6 and 4 x 3 processes x threads)
#
# On an H200 (2026-11-27) loading and compiling took 121 s in one process and 135 s in two side by side.
#
# Everything it prints also goes, line by line, to $OUT/device_bench.log, so a run stopped at its time limit
# still brings back what it measured (a filter such as grep in the call's own pipeline holds its output back
# until it ends, and a killed run then returns nothing: that lost a whole run once). The first process
# compiles every batch shape up to 128; the later ones read them from the cache. On an H100 the first call's
# three processes took 278 s in all, mostly loading and compiling; each now prints how long that took.
#
# The device's own image already holds numpy, scipy, scikit-learn, opencv-python-headless, pillow, h5py,
# ml-dtypes, threadpoolctl, rich and absl-py (its KINDS.md); the versions carried are requirements-gpu.lock's.
set -euo pipefail
cd "$(dirname "$0")/.."

# py-spy (carried) on the bench whose pid is $1, once it prints "soak:": 15 s of only the thread holding the GIL,
# and 15 s of every running thread, at 200 samples a second. The GIL samples over 3,000 are the share of the time
# the GIL was held: one process's ceiling is about 1 / that share times its rate. Never fails the run.
profile() {
  local spy=/tmp/site/bin/py-spy log="${OUT:-/tmp}/device_bench.log" seconds=15 rate=200
  [ -x "$spy" ] || { echo "profile: py-spy is not installed"; return 0; }
  for _ in $(seq 600); do
    grep -q "^soak: the worker" "$log" 2>/dev/null && break
    kill -0 "$1" 2>/dev/null || { echo "profile: the bench ended before its soak"; return 0; }
    sleep 1
  done
  "$spy" record --pid "$1" --duration "$seconds" --gil --nonblocking -r "$rate" -f raw -o /tmp/spy-gil.txt \
    >/tmp/spy-gil.log 2>&1 &
  local gil=$!
  "$spy" record --pid "$1" --duration "$seconds" --nonblocking -r "$rate" -f raw -o /tmp/spy-all.txt \
    >/tmp/spy-all.log 2>&1 &
  wait "$gil" $! || true
  for kind in gil all; do
    if [ ! -s "/tmp/spy-$kind.txt" ]; then
      echo "profile ($kind): py-spy recorded nothing: $(tail -n 2 "/tmp/spy-$kind.log" | tr '\n' ' ')"
      continue
    fi
    cp "/tmp/spy-$kind.txt" "${OUT:-/tmp}/" 2>/dev/null || true
    awk -v kind="$kind" -v ticks=$((seconds * rate)) '
      { c = $NF; $NF = ""; n = split($0, f, ";"); leaf[f[n]] += c; total += c }
      END {
        printf "profile (%s): %d samples in %d ticks (%.0f %%)\n", kind, total, ticks, 100 * total / ticks
        for (k in leaf) if (leaf[k] * 50 >= total) printf "  %5.1f %%  %s\n", 100 * leaf[k] / total, k
      }' "/tmp/spy-$kind.txt" | { read -r head; echo "$head"; sort -rn; }
  done
}
# Runs a bench (its arguments; $1 "profile": py-spy samples it too). It waits for its own children by pid: a bare
# `wait` would also wait for the tee that logs the output, which never ends (that stopped a whole call on an H200).
bench() {
  local profiled=$1 pid spy=""
  shift
  python3 -m tools.bench.ml "$@" &
  pid=$!
  if [ "$profiled" = profile ]; then
    profile "$pid" &
    spy=$!
  fi
  wait "$pid" || echo "bench ended with status $?"
  [ -z "$spy" ] || wait "$spy" || echo "profile ended with status $?"
}
# "P T" ...: P processes at once, T threads each, on the worker's path; the first compiles, the rest read its cache
processes() {
  for run in "$@"; do
    set -- $run
    date +%T
    bench - --batch-path 4000 --batch 128 --processes "$1" --threads "$2" --folder .device/data
  done
}
setup() {
  exec > >(tee -a "${OUT:-/tmp}/device_bench.log") 2>&1
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/wheels/*.whl
  export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
  export JAX_COMPILATION_CACHE_DIR=/tmp/jax-cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
  nvidia-smi -L || true
  echo "$(nproc) CPU cores; cgroup CPU quota: $(cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo unknown)"
  python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
  date +%T
}
case "${1:-}" in
prepare)
  rm -rf .device && mkdir -p .device/wheels .device/data
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .device/wheels keras==3.15.1 optree==0.20.0 namex==0.1.0 pydicom==3.0.2 \
    simplejpeg==1.9.0 py-spy==0.4.3
  src=../shared/data/chest_xray/train
  [ -d "$src" ] || { echo "no $src: the training images are needed" >&2; exit 1; }
  find "$src" -name '*.jpeg' | sort | awk 'NR % 5 != 0' | head -n 4000 | while read -r f; do
    cp "$f" ".device/data/$(basename "$(dirname "$f")")-$(basename "$f")"
  done
  du -sh .device && ls .device/wheels
  ;;
run)
  setup
  # one process as the compose GPU worker runs it (12 decode/render threads), serial and pipelined as the
  # worker's task runs it (a helper thread decodes the next batch and draws the one before while the model judges)
  # (from the originals, then from working copies as the worker now judges); then radiographs of a clinical size
  # then 25 s more of the worker's path, which py-spy samples: what holds the GIL, and where the time goes
  bench profile --batch-path 4000 --batch 128 --threads 12 --soak 25 --folder .device/data
  date +%T
  bench - --batch-path 512 --batch 128 --threads 12 --side 2000 --folder .device/data
  processes "4 1" "8 1"
  ;;
processes)
  # only several processes sharing the GPU (processes x threads each), for a call with little device time left
  setup
  processes "2 6" "4 3"
  ;;
*)
  echo "usage: bash tools/device_bench.sh prepare|run|processes" >&2
  exit 2
  ;;
esac
