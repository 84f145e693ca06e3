#!/usr/bin/env bash
# The main job: builds the examples and runs the SASQ comparison on stories260K (and its stress
# variant), writing results/results.{md,csv}, results/results_sites.csv and results/results.png.
# Extra arguments go to sasq-experiment (e.g. --quick, --threads N, --data DIR, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --main
if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=ccache; fi
data=../shared/data
for f in stories260K/stories260K.bin stories260K/tok512.bin tinystories/tinystories_valid_first1000.txt \
         wikitext-2-raw/wiki.test.raw; do
  [ -f "$data/$f" ] || { echo "experiment: missing $data/$f (the real data must sit in ../shared/data)" >&2; exit 1; }
done
cmake --preset experiment >/dev/null
cmake --build --preset experiment
# --data and --out default here unless given (sasq-experiment refuses an option given twice).
out=results
given_data=0 given_out=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --out) out=${args[i+1]:-}; given_out=1 ;;
    --out=*) out=${args[i]#--out=}; given_out=1 ;;
    --data | --data=*) given_data=1 ;;
  esac
done
defaults=()
[ "$given_data" = 1 ] || defaults+=(--data "$data")
[ "$given_out" = 1 ] || defaults+=(--out "$out")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
./build/experiment/examples/experiment/sasq-experiment "${defaults[@]}" "$@"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# run_info.txt: what scripts/results_doc.py puts above the tables of docs/results.md.
mkdir -p "$out"
{
  echo "Commit \`$commit\`, started $started; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')),"
  echo "$(g++ -dumpfullversion 2>/dev/null | sed 's/^/g++ /'), preset \`experiment\`; load average (1/5/15 min) $load_before at the start, $load_after at the end."
} > "$out/run_info.txt.tmp"
mv "$out/run_info.txt.tmp" "$out/run_info.txt"
/usr/bin/python3 examples/experiment/plot_results.py "$out/results.csv" "$out/results.png"
echo "experiment: wrote $out/results.md, $out/results.csv, $out/results_sites.csv, $out/results.png, $out/run_info.txt"
