#!/usr/bin/env bash
# End-to-end fuzz of the CLIs' inputs (issue 10): sasq-llama and sasq-train run on a seeded corpus
# of damaged copies of the real checkpoint, tokenizer, scales file and text, each run writing over
# an existing output. Every run must end without a signal, with exit code 0 or 1, and when it fails:
# exit code 1, one error line naming the damaged file, the existing output untouched and no
# temporary file left. Damage that must be detected (truncation, header bytes) must fail; damage a
# format cannot detect (a flipped bit inside float weights or text) may run. Small settings: seconds.
# usage: fuzz_inputs.sh SASQ_LLAMA SASQ_TRAIN WORK_DIR DATA_DIR
set -u
llama=$1 trainer=$2 work=$3 data=$4
rm -rf "$work" && mkdir -p "$work"
failures=0
. "$(dirname "$0")/lib.sh"

model=$data/stories260K/stories260K.bin tok=$data/stories260K/tok512.bin
stories=$data/tinystories/tinystories_valid_first1000.txt
if [ ! -f "$model" ] || [ ! -f "$tok" ] || [ ! -f "$stories" ]; then
  echo "skipped: needs stories260K and TinyStories in '$data'"
  exit 0
fi
head -c 20000 "$data/wikitext-2-raw/wiki.test.raw" >"$work/wiki.txt"
text=(--protocol wikitext --text "$work/wiki.txt" --calib-text "$work/wiki.txt")

# damage SRC DST KIND ARG: DST = SRC cut to ARG bytes (KIND cut) or with bit ARG flipped (KIND flip).
damage() {
  local src=$1 dst=$2 kind=$3 arg=$4
  if [ "$kind" = cut ]; then
    head -c "$arg" "$src" >"$dst"
  else
    cp "$src" "$dst"
    local byte=$((arg / 8)) bit=$((arg % 8)) old
    old=$(od -An -tu1 -j "$byte" -N1 "$dst" | tr -d ' ')
    printf "$(printf '\\%03o' $((old ^ (1 << bit))))" | dd of="$dst" bs=1 seek="$byte" conv=notrunc status=none
  fi
}

# check MUST_FAIL FILE OUTPUT CMD...: runs CMD (which writes OUTPUT over an existing file) and
# checks the rules in the file comment; MUST_FAIL=1 also requires the run to fail.
check() {
  local must=$1 file=$2 out=$3
  shift 3
  echo "an existing result" >"$out"
  cp "$out" "$work/out.orig"
  "$@" >"$work/stdout" 2>"$work/stderr"
  local rc=$? why=""
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then why="exit code $rc (a signal or a usage error)"; fi
  if [ "$must" -eq 1 ] && [ "$rc" -eq 0 ]; then why="exit code 0 on an input that must be refused"; fi
  if [ "$rc" -eq 1 ]; then
    one_error_line "$file" || why="$why; $message"
    cmp -s "$out" "$work/out.orig" || why="$why; the existing output was changed"
  fi
  ls "$out".tmp-* >/dev/null 2>&1 && why="$why; a temporary file was left behind"
  verdict "$*" "$why" 3
  runs=$((runs + 1))
}
runs=0

# A good scales file to damage, trained in one step.
quick_train=(--steps 1 --calibration 2 --train 501-510 --heldout 2 --max-predictions 16 --quiet --threads 2)
"$trainer" --model "$model" --tokenizer "$tok" --text "$stories" "${quick_train[@]}" --out "$work/good.scales" >/dev/null ||
  { echo "FAIL: sasq-train could not make the scales file"; exit 1; }

model_size=$(stat -c %s "$model") tok_size=$(stat -c %s "$tok") scales_size=$(stat -c %s "$work/good.scales")

# Checkpoint: truncations and header bit flips must fail; weight bit flips may run.
for n in 0 3 27 28 1000 $((model_size / 2)) $((model_size - 1)); do
  damage "$model" "$work/model.bin" cut "$n"
  check 1 "$work/model.bin" "$work/stats.csv" "$llama" stats --model "$work/model.bin" --tokenizer "$tok" "${text[@]}" --max-tokens 32 --out "$work/stats.csv"
done
for bit in 0 9 30 62 95 130 161 190; do  # the seven int32 config fields (28 bytes)
  damage "$model" "$work/model.bin" flip "$bit"
  check 1 "$work/model.bin" "$work/stats.csv" "$llama" stats --model "$work/model.bin" --tokenizer "$tok" "${text[@]}" --max-tokens 32 --out "$work/stats.csv"
done
RANDOM=10  # seeded: the same corpus every run
for i in 1 2 3 4 5 6; do
  bit=$(( (224 + (RANDOM * 32768 + RANDOM) % ((model_size - 28) * 8)) ))
  damage "$model" "$work/model.bin" flip "$bit"
  check 0 "$work/model.bin" "$work/stats.csv" "$llama" stats --model "$work/model.bin" --tokenizer "$tok" "${text[@]}" --max-tokens 32 --out "$work/stats.csv"
done
damage "$model" "$work/model.bin" cut $((model_size - 4))
check 1 "$work/model.bin" "$work/t.scales" "$trainer" --model "$work/model.bin" --tokenizer "$tok" --text "$stories" "${quick_train[@]}" --out "$work/t.scales"

# Tokenizer: truncations and flips of max_token_length or an entry length must fail.
for n in 0 3 4 11 $((tok_size / 2)) $((tok_size - 1)); do
  damage "$tok" "$work/tok.bin" cut "$n"
  check 1 "$work/tok.bin" "$work/stats.csv" "$llama" stats --model "$model" --tokenizer "$work/tok.bin" "${text[@]}" --max-tokens 32 --out "$work/stats.csv"
done
check 1 "$work/tok.bin" "$work/t.scales" "$trainer" --model "$model" --tokenizer "$work/tok.bin" --text "$stories" "${quick_train[@]}" --out "$work/t.scales"
for bit in 31 90 95; do  # sign of max_token_length; high bits of entry 0's length (bytes 8-11)
  damage "$tok" "$work/tok.bin" flip "$bit"
  check 1 "$work/tok.bin" "$work/stats.csv" "$llama" stats --model "$model" --tokenizer "$work/tok.bin" "${text[@]}" --max-tokens 32 --out "$work/stats.csv"
done
for i in 1 2 3 4 5 6; do
  damage "$tok" "$work/tok.bin" flip $(( (RANDOM * 32768 + RANDOM) % (tok_size * 8) ))
  check 0 "$work/tok.bin" "$work/stats.csv" "$llama" stats --model "$model" --tokenizer "$work/tok.bin" "${text[@]}" --max-tokens 32 --out "$work/stats.csv"
done

# Scales file (ppl prints to stdout: no output file): truncations at line boundaries must fail;
# random bit flips may give another valid file.
ppl=(ppl --model "$model" --tokenizer "$tok" "${text[@]}" --max-tokens 32 --wbits 8 --abits 8 --json)
lines=$(wc -l <"$work/good.scales")
for n in 0 1 2 3 4 5 6 7 8 9 10 15 $((lines - 1)); do
  head -n "$n" "$work/good.scales" >"$work/bad.scales"
  check 1 "$work/bad.scales" "$work/none" "$llama" "${ppl[@]}" --scales "$work/bad.scales"
done
for i in $(seq 1 12); do
  damage "$work/good.scales" "$work/bad.scales" flip $(( (RANDOM * 32768 + RANDOM) % (scales_size * 8) ))
  check 0 "$work/bad.scales" "$work/none" "$llama" "${ppl[@]}" --scales "$work/bad.scales" --exec int
done

# Text: empty or cut texts; flips inside the text may run.
for n in 0 1 100; do
  head -c "$n" "$work/wiki.txt" >"$work/text.txt"
  check 1 "$work/text.txt" "$work/stats.csv" "$llama" stats --model "$model" --tokenizer "$tok" --protocol wikitext --text "$work/wiki.txt" --calib-text "$work/text.txt" --out "$work/stats.csv"
  check 1 "$work/text.txt" "$work/t.scales" "$trainer" --model "$model" --tokenizer "$tok" --text "$work/text.txt" "${quick_train[@]}" --out "$work/t.scales"
done
for i in 1 2 3; do
  damage "$work/wiki.txt" "$work/text.txt" flip $(( (RANDOM * 32768 + RANDOM) % (20000 * 8) ))
  check 0 "$work/text.txt" "$work/stats.csv" "$llama" stats --model "$model" --tokenizer "$tok" --protocol wikitext --text "$work/text.txt" --calib-text "$work/text.txt" --max-tokens 32 --out "$work/stats.csv"
done

# Missing inputs and output folders: usage errors (exit 2) naming the option, output untouched.
usage "--model" "$llama" stats --model "$work/missing.bin" --out "$work/stats.csv"
usage "--out" "$trainer" --out "$work/missing-dir/a.scales"
usage "--scales" "$llama" ppl --abits 8 --scales "$work/missing.scales"

echo "$runs damaged-input runs"
if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all passed"
