#!/usr/bin/env bash
# Issue 9 item 5 at full size (docs/evaluation.md §6): the whole KuaiRand-Pure log
# through `freshet replay` → embedded Kafka → ingest → learner beside `freshet eval
# --mode prequential` (5 seeds: the noise) on the same rows, once per task window:
# 900 s (longer than any play time, so no label is late), 60 s (the eval config's
# default) and 15 s (the default config's click window). 16 partitions: the embedded
# cluster keeps ~5 MB per partition, so one partition cannot hold the whole log.
#   ops/eval/stream_vs_eval.sh [BUILD_DIR=build]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
out="$build/eval"
mkdir -p "$out"
for window in 900000 60000 15000; do
  echo "== task windows ${window} ms"
  FRESHET_PIPELINE_EVAL_ROWS=0 FRESHET_PIPELINE_EVAL_PARTITIONS=16 FRESHET_PIPELINE_EVAL_WINDOW_MS=$window \
    "$build/tests/ops/pipeline_eval_test" --gtest_brief=1 2>&1 | grep -v 'kafka_client_log' | tee "$out/stream_vs_eval_$window.txt"
done
