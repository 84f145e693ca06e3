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
