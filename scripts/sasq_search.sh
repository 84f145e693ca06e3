#!/usr/bin/env bash
# SASQ training hyper-parameter search, on the held-out stories 951-1000 only: each candidate runs
# `sasq-experiment --heldout-only` (trains the SASQ + rotation rows and scores them on the held-out
# slice; no evaluation text is read into any number). The experiment's defaults --lr (A8), --lr-a4,
# --patience-a4, --sasq-kd (0: off) and --sasq-wquant were chosen from this output (docs/results.md,
# "SASQ training choices").
# Extra arguments go to every sasq-experiment call (e.g. --threads 2). Build first:
# cmake --preset experiment && cmake --build --preset experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
x=./build/experiment/examples/experiment/sasq-experiment
[ -x "$x" ] || { echo "sasq_search: $x is not built (cmake --build --preset experiment)" >&2; exit 1; }
sasq="SASQ + rotation static"
quarot="QuaRot (rotation + dynamic clip 0.9)"
chan="SASQ + rotation + channel factors static"
run() { "$x" --data ../shared/data --heldout-only "$@" 2>/dev/null | tail -n +2; }
echo -e "bits\tweights\tmethod\tlr\tsteps\tbatch\tpatience\tlsq\tkd\tinit\tbest_step\tsteps_run\theldout_ppl_init\theldout_ppl"
# Learning rate at both activation widths (120 steps, patience 4 at both widths, as searched first).
for lr in 0.02 0.05 0.1; do
  run --bits W8A8 W8A4 W4A4 --methods "$sasq" "$sasq (RTN)" --lr "$lr" --lr-a4 "$lr" --patience-a4 4 "$@"
done
# Longer training at 4 bits (no early stop).
for lr in 0.02 0.05; do run --bits W4A4 --methods "$sasq" --lr-a4 "$lr" --steps 240 --patience-a4 0 "$@"; done
# GPTQ in act-order for the SASQ rows, and QuaRot's held-out perplexity with either weights (reference).
run --bits W8A8 W8A4 W4A4 --methods "$sasq" "$quarot" --sasq-wquant gptq-ao --patience-a4 4 "$@"
run --bits W8A8 W8A4 W4A4 --methods "$quarot" --wquant gptq-ao "$@"
# Distillation from the float model (--sasq-kd: weight of the teacher's distribution in the target).
for kd in 0.25 0.5 1; do run --bits W4A4 --methods "$sasq" --sasq-kd "$kd" --patience-a4 4 "$@"; done
for kd in 0.5 1; do run --bits W8A8 --methods "$sasq" "$sasq (RTN)" --sasq-kd "$kd" "$@"; done
# Early stopping at 4 bits: patience 4 (above) against all steps with the best held-out scales kept
# (--patience-a4 0), 120 and 240 steps, with and without distillation.
for kd in 0 0.5; do
  run --bits W4A4 --methods "$sasq" --sasq-kd "$kd" --patience-a4 0 "$@"
  run --bits W4A4 --methods "$sasq" --sasq-kd "$kd" --steps 240 --patience-a4 0 "$@"
done
run --bits W4A4 --methods "$sasq" --sasq-kd 0.5 --patience-a4 0 --lr-a4 0.05 "$@"
run --bits W4A4 --methods "$sasq" --patience-a4 0 --lr-a4 0.05 "$@"
run --bits W8A4 --methods "$sasq" --patience-a4 0 "$@"
# Per-channel activation factors after the rotation (third round, W4A4): fixed abs-max^alpha factors
# folded into the weights at the attention, o_proj and FFN inputs; per-channel SASQ scales (fake quant
# only, no integer path); the learned per-channel steps folded into the weights, then per-tensor SASQ
# (the channel-factor row).
for a in 0.25 0.5 0.75; do run --bits W4A4 --methods "$sasq" --chan-alpha "$a" "$@"; done
run --bits W4A4 --methods "$sasq" --sasq-per-channel "$@"
run --bits W4A4 --methods "$chan" "$@"
