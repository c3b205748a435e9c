#!/usr/bin/env bash
# KuaiRand-Pure (docs/evaluation.md §4): single-task, MMoE, CGC, PLE, HoME and the
# HoME ablations, offline (train before 2022-04-29, test after, PASSES passes) and
# prequential (one pass over all six days), SEEDS seeds each.
#   ops/eval/kuairand.sh [SEEDS=3] [PASSES=1]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seeds="${1:-3}"
passes="${2:-1}"
out="$root/build/eval"
mkdir -p "$out"
variants=single_task,mmoe,cgc,ple,home,home_no_norm_swish,home_no_hierarchy,home_no_feature_gate,home_no_self_gate
for mode in offline prequential; do
  "$root/build/freshet" eval --data kuairand --mode "$mode" --passes "$passes" --seeds "$seeds" \
    --family "$variants" --model-config "$root/configs/eval/kuairand.pbtxt" --json "$out/kuairand_$mode.json"
done
