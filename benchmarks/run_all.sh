#!/usr/bin/env bash
# One timing run for docs/performance.md: gemm_bench, decode_bench and block_bench back to back, each
# between snapshots of the load average and the busiest processes (the run is only meaningful on an
# otherwise idle machine), then the tables and plots.
# usage: bash benchmarks/run_all.sh [BUILD_DIR (build/bench)] [OUT_DIR (results/bench)]
set -euo pipefail
build=${1:-build/bench}
out=${2:-results/bench}
mkdir -p "$out"
snapshot() {
  echo "== $1 $(date -u +%FT%TZ) load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  ps -eo pid,pcpu,etime,comm --sort=-pcpu | head -5
}
run() {  # name, extra flags...
  local name=$1
  shift
  snapshot "before $name"
  "$build/benchmarks/$name" --benchmark_report_aggregates_only=true --benchmark_out="$out/$(basename "$name").json" \
    --benchmark_out_format=json "$@" > "$out/$(basename "$name").txt"
  snapshot "after $name"
}
{
  run gemm/gemm_bench --benchmark_min_time=0.05 --benchmark_repetitions=3
  run decode/decode_bench --benchmark_min_time=0.2 --benchmark_repetitions=5
  run llama_block/block_bench --benchmark_min_time=0.3 --benchmark_repetitions=3
} 2>&1 | tee "$out/run.log"
# Tables and plots (Debian's python3 has matplotlib), and the medians alone for benchmarks/results/.
py=/usr/bin/python3
$py benchmarks/gemm/plot_gemm.py "$out/gemm_bench.json" "$out/performance_gemm.png" > "$out/gemm_tables.md"
$py benchmarks/report.py "$out/gemm_bench.json" "$out/decode_bench.json" "$out/block_bench.json" \
  "$out/performance_block.png" > "$out/report.md"
for f in gemm_bench decode_bench block_bench; do
  $py -c 'import json, sys; d = json.load(open(sys.argv[1])); d["benchmarks"] = [b for b in d["benchmarks"] if b.get("aggregate_name") == "median"]; json.dump(d, open(sys.argv[2], "w"), indent=1)' \
    "$out/$f.json" "$out/$f.median.json"
done
