#!/usr/bin/env bash
# Regression tests of the three CLIs' command lines (issue 10): every bad option or value is an
# error naming it with exit code 2 and one line on stderr, --help/--version exit 0, and nothing
# is loaded or written before the command line is known to be good.
# With the real data (DATA_DIR, ../shared/data) it also runs the programs on damaged inputs: each
# must fail with exit code 1 and one line naming the file, never by a signal.
# usage: cli_test.sh SASQ_LLAMA SASQ_TRAIN SASQ_EXPERIMENT WORK_DIR [DATA_DIR]
set -u
llama=$1 trainer=$2 experiment=$3 work=$4 data=${5:-}
rm -rf "$work" && mkdir -p "$work"
failures=0

# run, usage, one_error_line, limited, expect_failed_write.
. "$(dirname "$0")/lib.sh"

for exe in "$llama" "$trainer" "$experiment"; do
  run 0 "" "$exe" --help
  run 0 "" "$exe" --version
  grep -q "sasq 0\.\|sasq [0-9]" "$work/stdout" || { failures=$((failures + 1)); echo "FAIL: $exe --version prints no version"; }
  usage "--no-such-option" "$exe" --no-such-option
done
run 0 "" "$llama" ppl --help

# sasq-llama: typos and ignored flags, out-of-range and malformed numbers.
usage "--wbit" "$llama" ppl --wbit 4 --abits 4
usage "--scale" "$llama" ppl --scale "$work/x.scales" --abits 8
usage "--wbits" "$llama" ppl --wbits 4294967304
usage "--wbits" "$llama" ppl --wbits 5
usage "--abits" "$llama" ppl --abits 2
usage "--wgroup" "$llama" ppl --wgroup 7
usage "--threads" "$llama" ppl --threads 0
usage "--threads" "$llama" ppl --threads 3.9
usage "--max-tokens" "$llama" ppl --max-tokens 1e10
usage "--max-tokens" "$llama" ppl --max-tokens -1
usage "--max-windows" "$llama" ppl --max-windows 12abc
usage "--protocol" "$llama" ppl --protocol imdb
usage "--wquant" "$llama" ppl --wquant foo
usage "--exec" "$llama" ppl --exec gpu
usage "--abits" "$llama" ppl --abits 8 --abits 4
usage "--model" "$llama" ppl --model "$work/missing.bin"
usage "--text" "$llama" ppl --text "$work"
usage "--scales" "$llama" stats --scales "$work/x.scales"
usage "--scales" "$llama" baselines --scales "$work/x.scales"
usage "--json" "$llama" stats --json
usage "--steps" "$llama" ppl --steps 4
usage "--steps" "$llama" generate --steps 0
usage "--out" "$llama" stats --out "$work/no-such-dir/stats.csv"
usage "--out" "$llama" stats --out "$work"
usage "subcommand" "$llama"
usage "unknown command or option: pp" "$llama" pp
touch "$work/x.scales"
usage "--scales needs --abits" "$llama" ppl --scales "$work/x.scales"
usage "--scales needs --act static" "$llama" ppl --scales "$work/x.scales" --abits 8 --act dynamic
usage "--observer" "$llama" ppl --scales "$work/x.scales" --abits 8 --observer mse
usage "--kv-cache" "$llama" ppl --scales "$work/x.scales" --abits 8 --kv-cache
usage "--exec int needs" "$llama" ppl --exec int --abits 8

# sasq-train: the same option validations as sasq-llama, and its own.
usage "--wgroup" "$trainer" --wgroup 7
usage "--wbits" "$trainer" --wbits 4294967304
usage "--abits" "$trainer" --abits 0
usage "--clip" "$trainer" --clip -1
usage "--clip" "$trainer" --clip nan
usage "--lr" "$trainer" --lr 0
usage "--lr" "$trainer" --lr inf
usage "--min-lr-ratio" "$trainer" --min-lr-ratio 2
usage "--warmup" "$trainer" --warmup -5
usage "--patience" "$trainer" --patience -1
usage "--steps" "$trainer" --steps 3.9
usage "--steps" "$trainer" --steps 1e10
usage "--batch" "$trainer" --batch 0
usage "--seed" "$trainer" --seed -1
usage "--train" "$trainer" --train 501-520xyz
usage "--train" "$trainer" --train 520-501
usage "--train" "$trainer" --train 400-520
usage "--train" "$trainer" --train 501
usage "--heldout" "$trainer" --train 501-520 --heldout 20
usage "--granularity" "$trainer" --granularity per_row
usage "--schedule" "$trainer" --schedule step
usage "--observer" "$trainer" --observer max
usage "--out" "$trainer" --out "$work/no-such-dir/a.scales"
usage "--out" "$trainer" --out "$work"
usage "--model" "$trainer" --model "$work/missing.bin"

# sasq-experiment.
usage "--threads" "$experiment" --threads 0
usage "--eval-stories" "$experiment" --eval-stories 501
usage "--calib" "$experiment" --calib 0
usage "--steps" "$experiment" --steps -3
usage "--wiki-windows" "$experiment" --wiki-windows x
usage "--lr" "$experiment" --lr 0
usage "--lr" "$experiment" --lr nan
usage "--lr-a4" "$experiment" --lr-a4 -0.02
usage "--sasq-wquant" "$experiment" --sasq-wquant gptq-act
usage "--batch" "$experiment" --batch 0
usage "--patience" "$experiment" --patience -1
usage "--bits" "$experiment" --bits W4A2
usage "--bits" "$experiment" --bits W4A4 W4A4
usage "--methods" "$experiment" --methods SASQ
usage "--methods" "$experiment" --methods "SASQ static" "SASQ static"
usage "--wquant" "$experiment" --wquant gptq-act
usage "--data" "$experiment" --data "$work/no-such-dir"
touch "$work/file"
usage "--out" "$experiment" --out "$work/file/results"

# ---- runs on the real data -----------------------------------------------------------------------
model=$data/stories260K/stories260K.bin tok=$data/stories260K/tok512.bin
if [ -n "$data" ] && [ -f "$model" ] && [ -f "$tok" ]; then
  m=(--model "$model" --tokenizer "$tok")
  echo "short text" >"$work/short.txt"
  head -c 20000 "$data/wikitext-2-raw/wiki.test.raw" >"$work/wiki.txt"
  # A calibration text shorter than one window: an error, not a segfault.
  run 1 "$work/short.txt" "$llama" stats "${m[@]}" --protocol wikitext --text "$work/wiki.txt" --calib-text "$work/short.txt" --max-windows 1
  run 1 "$work/short.txt" "$llama" ppl "${m[@]}" --protocol wikitext --text "$work/wiki.txt" --calib-text "$work/short.txt" --max-windows 1 --abits 8 --act static
  run 1 "$work/short.txt" "$llama" ppl "${m[@]}" --protocol wikitext --text "$work/short.txt"

  # No result lost: a failed write (size limit, full device) is an error, leaves no partial or
  # temporary file and keeps the file it would have replaced.
  quick_train=(--steps 1 --calibration 2 --train 501-510 --heldout 2 --max-predictions 16 --quiet)
  run 0 "" "$trainer" "${m[@]}" --text "$data/tinystories/tinystories_valid_first1000.txt" "${quick_train[@]}" --out "$work/good.scales"
  cp "$work/good.scales" "$work/kept.scales"
  limited 0 "$trainer" "${m[@]}" --text "$data/tinystories/tinystories_valid_first1000.txt" "${quick_train[@]}" \
    --out "$work/kept.scales" --seed 7; rc=$?
  expect_failed_write "sasq-train --out under a 0-byte size limit" "$rc" "$work/kept.scales" "$work/good.scales"
  stats=(stats "${m[@]}" --protocol wikitext --text "$work/wiki.txt" --calib-text "$work/wiki.txt" --max-tokens 64)
  echo "an existing result" >"$work/stats.csv"
  cp "$work/stats.csv" "$work/stats.orig"
  limited 1 "$llama" "${stats[@]}" --out "$work/stats.csv"; rc=$?
  expect_failed_write "sasq-llama stats --out under a 1 KiB size limit" "$rc" "$work/stats.csv" "$work/stats.orig"
  if [ -w /dev/full ]; then
    run 1 "standard output" bash -c '"$@" >/dev/full' _ "$llama" "${stats[@]}"
    run 1 "/dev/full" "$llama" "${stats[@]}" --out /dev/full
    run 1 "standard output" bash -c '"$@" >/dev/full' _ "$llama" ppl "${m[@]}" --text "$work/wiki.txt" --protocol wikitext --json
  fi
  run 0 "" "$llama" "${stats[@]}" --out "$work/stats.csv"
  [ "$(head -c 6 "$work/stats.csv")" = "layer," ] || { failures=$((failures + 1)); echo "FAIL: stats --out wrote no CSV"; }
  # Values that cannot be right: unusable scales (file:line), scales trained with other weights,
  # a tokenizer of another model.
  ppl=(ppl "${m[@]}" --protocol wikitext --text "$work/wiki.txt" --max-tokens 64 --abits 8)
  run 0 "" "$llama" "${ppl[@]}" --wbits 8 --scales "$work/good.scales"
  run 1 "trained with W8 g0 rtn weights, this run quantizes W4 g0 rtn" "$llama" "${ppl[@]}" --wbits 4 --scales "$work/good.scales"
  run 0 "" "$llama" "${ppl[@]}" --wbits 4 --scales "$work/good.scales" --ignore-weight-mismatch
  grep -q "warning: .*good.scales: scales were trained with W8" "$work/stderr" || { failures=$((failures + 1)); echo "FAIL: no weight-mismatch warning"; }
  sed -e 's/^weights .*/weights unknown/' "$work/good.scales" >"$work/unknown.scales"
  run 1 "does not record the weight quantization" "$llama" "${ppl[@]}" --wbits 8 --scales "$work/unknown.scales"
  for bad in 1e-39 3e38 0 -0.5 nan inf; do
    awk -v v="$bad" '$2 == "attn_in" && $1 == "1" { $4 = v } { print }' "$work/good.scales" >"$work/bad.scales"
    run 1 "bad.scales:" "$llama" "${ppl[@]}" --wbits 8 --scales "$work/bad.scales" --exec int --threads 2
  done
  if [ -f "$data/llama2-tokenizer/tokenizer.bin" ]; then
    run 1 "the tokenizer has 32000 entries but the model's vocabulary has 512" \
      "$llama" ppl --model "$model" --tokenizer "$data/llama2-tokenizer/tokenizer.bin" --text "$work/wiki.txt" --protocol wikitext
  fi

  # An output folder that cannot be created or written is refused before any work.
  usage "/proc/sasq-test" "$experiment" --data "$data" --out /proc/sasq-test/results --quick
  if [ "$(id -u)" -ne 0 ]; then
    mkdir -p "$work/readonly" && chmod 555 "$work/readonly"
    usage "--out" "$experiment" --data "$data" --out "$work/readonly" --quick
    usage "--out" "$trainer" --out "$work/readonly/a.scales"
    usage "--out" "$llama" stats --out "$work/readonly/a.csv"
  fi
else
  echo "skipped: runs on the real data (no stories260K in '$data')"
fi

# docs/cli.md is the programs' generated help.
here=$(cd "$(dirname "$0")" && pwd)
if ! bash "$here/../../scripts/cli_help.sh" "$llama" "$trainer" "$experiment" >"$work/cli.md" ||
   ! diff -u "$here/../../docs/cli.md" "$work/cli.md"; then
  failures=$((failures + 1))
  echo "FAIL: docs/cli.md is out of date: bash scripts/cli_help.sh <the three programs> > docs/cli.md"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all passed"
