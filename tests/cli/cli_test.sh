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

# run EXPECTED_RC NEEDLE CMD...: runs CMD, checks its exit code, that stderr is one line holding
# NEEDLE (when EXPECTED_RC != 0) and that no signal ended it.
run() {
  local want=$1 needle=$2
  shift 2
  "$@" >"$work/stdout" 2>"$work/stderr"
  local rc=$? why=""
  if [ "$rc" -ne "$want" ]; then why="exit code $rc, expected $want"; fi
  if [ "$want" -ne 0 ]; then
    local lines
    lines=$(wc -l <"$work/stderr")
    [ "$lines" -eq 1 ] || why="$why; stderr has $lines lines"
    grep -qF -- "$needle" "$work/stderr" || why="$why; stderr lacks '$needle'"
  fi
  if [ -n "$why" ]; then
    failures=$((failures + 1))
    echo "FAIL: $* -> $why"
    sed 's/^/  stderr: /' "$work/stderr" | head -5
  else
    echo "ok:   $*"
  fi
}
usage() { run 2 "$@"; }

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
usage "--wclip" "$llama" ppl --wclip foo
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
