#!/bin/bash
# The bounded-context comparison on long addition chains (docs/bounded-context.md, "Long
# addition chains"): one cold start that answers in every format, then one grid of greedy
# evaluations on 200 held-out 12-term chains at a largest context of 128 new tokens.
# Run from the repository root; resumable (a finished adapter is kept, the grid resumes).
# About 50 minutes on 2 CPU cores.
set -e
export OMP_WAIT_POLICY=PASSIVE
M=.venv/bin/motif
O=${1:-runs/bounded-context-addition}
[ -f $O/sft/adapter_config.json ] || $M sft --config recipes/sft_addition_bounded_cpu.yaml --output-dir $O/sft --overwrite
TASK='{"size": 400, "min_terms": 12, "max_terms": 12, "min_digits": 1, "max_digits": 1, "operators": ["+"], "allow_parentheses": false, "allow_negation": false}'
$M eval --benchmark reasoning_gym:basic_arithmetic --task-config "$TASK" --data-seed 1000003 \
  --limit 200 --batch-size 50 --adapter $O/sft --tail-head 8 --tail-keep 56 \
  --grid "128=none:1x128" \
  --grid "192=tail:2x128,none:1x192" \
  --grid "256=summary:2x128,tail:3x128,none:1x256" \
  --grid "384=summary:3x128,tail:5x128,none:1x384" \
  --output-dir $O/grid
