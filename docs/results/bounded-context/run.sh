#!/bin/bash
# The bounded-context comparison after each strategy's own cold start (docs/bounded-context.md,
# "After a cold start: a 12-term chain"). Run from the repository root; resumable (an adapter
# that exists is kept, an eval resumes). About 45 minutes on 2 CPU cores.
set -e
export OMP_WAIT_POLICY=PASSIVE
M=.venv/bin/motif
O=${1:-runs/bounded-context}
[ -f $O/sft-summary/adapter_config.json ] || $M sft --config recipes/sft_long_chain_sum_cpu.yaml --output-dir $O/sft-summary --overwrite --eval-size 0
[ -f $O/sft-tail/adapter_config.json ] || $M sft --config recipes/sft_long_chain_sum_tail_cpu.yaml --output-dir $O/sft-tail --overwrite --eval-size 0
[ -f $O/sft-none/adapter_config.json ] || $M sft --config recipes/sft_long_chain_sum_cpu.yaml --rounds 1 --epochs 3 --eval-max-new-tokens 384 --output-dir $O/sft-none --overwrite --eval-size 0
TASK='{"size": 400, "min_terms": 12, "max_terms": 12, "min_digits": 1, "max_digits": 1}'
COMMON=(--benchmark reasoning_gym:chain_sum --task-config "$TASK" --data-seed 1000003 --limit 200 --batch-size 50)
$M eval "${COMMON[@]}" --adapter $O/sft-summary --rounds 3 --max-new-tokens 128 --later-max-new-tokens 128 --output-dir $O/ev-summary-3x128
$M eval "${COMMON[@]}" --adapter $O/sft-tail --carry-over tail --tail-chunk 128 --tail-head 8 --tail-keep 64 --tail-chunks 4 --output-dir $O/ev-tail-4x128
$M eval "${COMMON[@]}" --adapter $O/sft-none --carry-over none --max-new-tokens 128 --output-dir $O/ev-none-1x128
$M eval "${COMMON[@]}" --adapter $O/sft-none --carry-over none --max-new-tokens 384 --output-dir $O/ev-none-1x384
# the larger summary cold start (recipes/sft_chain_sum_3r_320_cpu.yaml, 40 min more)
[ -f $O/sft-summary-320/adapter_config.json ] || $M sft --config recipes/sft_chain_sum_3r_320_cpu.yaml --output-dir $O/sft-summary-320 --overwrite --eval-size 0
$M eval "${COMMON[@]}" --adapter $O/sft-summary-320 --rounds 3 --max-new-tokens 128 --later-max-new-tokens 128 --output-dir $O/ev-sftC-summary-3x128
