#!/usr/bin/env bash
# Census-income (docs/evaluation.md §3): single-task, shared-bottom, MMoE and PLE on
# group 1 (income + never married) and group 2 (education + never married), offline,
# a seeded 80/20 split of part-a (split seed 1), SEEDS initialisation seeds each.
#   ops/eval/census.sh [SEEDS=10] [PASSES=3]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seeds="${1:-10}"
passes="${2:-3}"
out="$root/build/eval"
mkdir -p "$out"
for group in 1 2; do
  "$root/build/freshet" eval --data census --census-group "$group" --split-seed 1 --mode offline \
    --passes "$passes" --seeds "$seeds" --family single_task,shared_bottom,mmoe,ple \
    --model-config "$root/configs/eval/census.pbtxt" --json "$out/census_g$group.json"
done
