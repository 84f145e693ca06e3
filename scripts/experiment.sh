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
out=results
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[i]}" = "--out" ] && out=${args[i+1]}; done
./build/experiment/examples/experiment/sasq-experiment --data "$data" --out "$out" "$@"
/usr/bin/python3 examples/experiment/plot_results.py "$out/results.csv" "$out/results.png"
echo "experiment: wrote $out/results.md, $out/results.csv, $out/results_sites.csv, $out/results.png"
