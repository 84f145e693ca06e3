#!/usr/bin/python3
"""Tables (markdown, stdout) and a GOPS-per-shape plot (PNG) from gemm_bench's JSON output.

usage: /usr/bin/python3 benchmarks/gemm/plot_gemm.py results.json docs/img/performance_gemm.png
Reads the median aggregates of a run with --benchmark_repetitions=N; GOPS (real time) is the benchmark's
counter, "cpu GOPS" = 2·M·N·K / cpu_time of the calling thread (meaningful for threads:1 only).
"""
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GEMM_IMPLS = ["sasq_s8s8_f32", "sasq_u8s8_f32", "sasq_w4a8g128_s8_f32", "onednn_u8s8_s32", "onednn_s8s8_s32",
              "onednn_u8s8_f32", "eigen_f32", "openblas_f32", "reference_s8s8_f32"]
NAME = re.compile(r"^(?P<impl>[a-z0-9_]+)/M:(?P<M>\d+)/K:(?P<K>\d+)/N:(?P<N>\d+)/threads:(?P<t>\d+)")
QNAME = re.compile(r"^(?P<impl>[a-z0-9_]+)/(rows|bytes):(?P<rows>\d+)(/cols:(?P<cols>\d+))?")


def load(path):
    data = json.load(open(path))
    gemm, other = {}, {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median" or b.get("error_occurred"):
            continue
        m = NAME.match(b["run_name"])
        if m and "GOPS" in b and m["impl"] in GEMM_IMPLS:
            M, K, N, t = (int(m[x]) for x in ("M", "K", "N", "t"))
            cpu_s = b["cpu_time"] * {"us": 1e-6, "ms": 1e-3, "ns": 1e-9, "s": 1.0}[b["time_unit"]]
            gemm[(m["impl"], M, K, N, t)] = (b["GOPS"], 2.0 * M * N * K / cpu_s * 1e-9)
            continue
        q = QNAME.match(b["run_name"])
        if q:
            other[b["run_name"]] = b["GBps"]
    return data["context"], gemm, other


def shapes(gemm):
    seen = []
    for (_, M, K, N, _) in gemm:
        if (M, K, N) not in seen:
            seen.append((M, K, N))
    return seen


def table(gemm, t, cpu=False):
    impls = [i for i in GEMM_IMPLS if any(k[0] == i and k[4] == t for k in gemm)]
    print("| M, K, N | " + " | ".join(impls) + " |")
    print("|---" * (len(impls) + 1) + "|")
    for (M, K, N) in shapes(gemm):
        cells = []
        for i in impls:
            v = gemm.get((i, M, K, N, t)) or (gemm.get((i, M, K, N, 1)) if i.startswith("reference") else None)
            cells.append("—" if v is None else f"{v[1 if cpu else 0]:.1f}")
        print(f"| {M}, {K}, {N} | " + " | ".join(cells) + " |")
    print()


def ratios(gemm, t, cpu=False):
    c = 1 if cpu else 0
    print("| M, K, N | s8s8 / oneDNN s8s8 | u8s8 / oneDNN u8s8 | u8s8 / oneDNN u8s8 f32 + scales | W4A8 / oneDNN s8s8 |"
          " s8s8 / Eigen f32 |")
    print("|---|---|---|---|---|---|")
    for (M, K, N) in shapes(gemm):
        def r(a, b):
            x, y = gemm.get((a, M, K, N, t)), gemm.get((b, M, K, N, t))
            return "—" if not x or not y else f"{x[c] / y[c]:.2f}"
        print(f"| {M}, {K}, {N} | {r('sasq_s8s8_f32', 'onednn_s8s8_s32')} | {r('sasq_u8s8_f32', 'onednn_u8s8_s32')} | "
              f"{r('sasq_u8s8_f32', 'onednn_u8s8_f32')} | {r('sasq_w4a8g128_s8_f32', 'onednn_s8s8_s32')} | {r('sasq_s8s8_f32', 'eigen_f32')} |")
    print()


def plot(gemm, out):
    shp = shapes(gemm)
    impls = [i for i in GEMM_IMPLS if any(k[0] == i for k in gemm)]
    fig, axes = plt.subplots(2, 1, figsize=(16, 10), sharex=True)
    width = 0.8 / len(impls)
    for ax, t in zip(axes, (1, 2)):
        for j, i in enumerate(impls):
            xs, ys = [], []
            for s_i, (M, K, N) in enumerate(shp):
                v = gemm.get((i, M, K, N, t)) or (gemm.get((i, M, K, N, 1)) if i.startswith("reference") else None)
                if v:
                    xs.append(s_i + (j - len(impls) / 2) * width)
                    ys.append(v[0])
            ax.bar(xs, ys, width, label=i)
        ax.set_yscale("log")
        ax.set_ylabel(f"GOPS (threads: {t})")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].legend(ncol=4, fontsize=8)
    axes[1].set_xticks(range(len(shp)))
    axes[1].set_xticklabels([f"{M},{K},{N}" for (M, K, N) in shp], rotation=45, ha="right", fontsize=8)
    axes[1].set_xlabel("M, K, N")
    fig.suptitle("gemm_bench: GOPS = 2·M·N·K / s (median of 3 repetitions, real time)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    ctx, gemm, other = load(sys.argv[1])
    print(f"host: {ctx.get('host_name')}, {ctx.get('num_cpus')} CPUs @ {ctx.get('mhz_per_cpu')} MHz, "
          f"load average at start {ctx.get('load_avg')}\n")
    for t in (1, 2):
        print(f"### GOPS, threads: {t} (real time)\n")
        table(gemm, t)
    print("### GOPS from the calling thread's CPU time, threads: 1\n")
    table(gemm, 1, cpu=True)
    for t in (1, 2):
        print(f"### Ratios (real time), threads: {t}\n")
        ratios(gemm, t)
    print("### Ratios (calling thread's CPU time), threads: 1\n")
    ratios(gemm, 1, cpu=True)
    print("### Quantize kernels and stream read (GB/s)\n")
    print("| benchmark | GB/s |\n|---|---|")
    for k, v in other.items():
        print(f"| {k} | {v:.1f} |")
    if len(sys.argv) > 2:
        plot(gemm, sys.argv[2])


if __name__ == "__main__":
    main()
