#!/usr/bin/env bash
# Runs every benchmark binary in BUILD_DIR/bench (and the peers they start), printing
# each one's output; the last line of each is its JSON result. Collected results go
# to BUILD_DIR/bench/results.jsonl. Usage: bench/run_all.sh [BUILD_DIR]
set -uo pipefail
build=${1:-build}
out="$build/bench/results.jsonl"
: > "$out"
status=0
echo "bench: machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for b in "$build"/bench/bench_*; do
  [[ -x "$b" && -f "$b" ]] || continue
  echo "== $(basename "$b")"
  if ! "$b" | tee "$build/bench/$(basename "$b").log"; then
    echo "bench: $(basename "$b") failed" >&2
    status=1
    continue
  fi
  tail -n 1 "$build/bench/$(basename "$b").log" >> "$out"
done
# The CUDA learner (issue 8): on a machine without a GPU each prints why and a
# "skipped" JSON line.
for args in "--backend cuda" "--backend cuda --large"; do
  echo "== bench_learner $args"
  "$build/bench/bench_learner" $args | tee "$build/bench/bench_learner_cuda.log" || status=1
  tail -n 1 "$build/bench/bench_learner_cuda.log" >> "$out"
done
echo "bench: results in $out"
exit $status
