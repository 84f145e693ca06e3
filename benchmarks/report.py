#!/usr/bin/python3
"""Issue-12 targets (met / missed), decode and block tables (markdown, stdout) and one plot (PNG) from one
run of gemm_bench, decode_bench and block_bench (JSON, --benchmark_repetitions=N, medians used).

usage: /usr/bin/python3 benchmarks/report.py gemm.json decode.json block.json docs/img/performance_block.png
"""
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def medians(path):
    data = json.load(open(path))
    out, errors = {}, []
    aggregated = any("aggregate_name" in b for b in data["benchmarks"])
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            errors.append(f"{b['name']}: {b.get('error_message')}")
            continue
        if aggregated and b.get("aggregate_name") != "median":
            continue
        b["seconds"] = b["real_time"] * UNIT[b["time_unit"]]
        out[b["run_name"].replace("/real_time", "")] = b
    return data["context"], out, errors


SAME_WORK_NOTE = ("Targets are against the faster of oneDNN u8s8 / s8s8 -> s32 (raw int32, no epilogue). The same-work "
                  "column is against oneDNN u8s8 -> f32 with per-channel output scales (w_scale[n] · a_scale): the "
                  "multiplies of sasq's f32 epilogue, no bias, as in sasq's benchmarked call; informational, not a "
                  "target.\n")


def mark(ok):
    return "**met**" if ok else "**missed**"


def gemm_time(g, impl, m, k, n, t):
    b = g.get(f"{impl}/M:{m}/K:{k}/N:{n}/threads:{t}")
    return b["seconds"] if b else None


def best(*xs):
    xs = [x for x in xs if x is not None]
    return min(xs) if xs else None


def ratio(slow, fast):
    return None if slow is None or fast is None else slow / fast


def fmt(x, d=2):
    return "—" if x is None else f"{x:.{d}f}"


def main():
    gctx, g, gerr = medians(sys.argv[1])
    dctx, d, derr = medians(sys.argv[2])
    bctx, blk, berr = medians(sys.argv[3])
    rows = []  # (target, measured, verdict)

    # 1. Decode at the memory limit.
    print("### Decode (M = 1): GB/s of packed weights, and as a fraction of the stream read of the same size class\n")
    print("Stream read: abs-max = the dynamic quantizer's abs-max reduction; xor = the plain reader (eight "
          "independent XOR accumulators), the ceiling the ≥ 85% target is measured against.\n")
    print("| weights | threads | stream read GB/s (abs-max) | (xor) | sasq INT8 | W4A8 per-channel | W4A8 g128 | oneDNN s8s8 |"
          " oneDNN u8s8 | INT8 / abs-max | INT8 / xor | INT8 / oneDNN (time) | W4A8 / oneDNN | W4A8 g128 / oneDNN |")
    print("|---" * 14 + "|")
    for st, stream_bytes in (("l2", None), ("l3", 1 << 24), ("layer7b", 1 << 30)):
        for t in (1, 2):
            get = lambda impl: d.get(f"decode_{st}/{impl}/threads:{t}")  # noqa: E731
            stream = d.get(f"stream_read/bytes:{stream_bytes}/threads:{t}") if stream_bytes else None
            xor = d.get(f"read_xor/bytes:{stream_bytes}/threads:{t}") if stream_bytes else None
            sgb = stream["GBps"] if stream else None
            xgb = xor["GBps"] if xor else None
            cells = [get(i) for i in ("sasq_int8", "sasq_w4a8", "sasq_w4a8g128", "onednn_s8s8", "onednn_u8s8")]
            gbs = [c["GBps"] if c else None for c in cells]
            secs = [c["seconds"] if c else None for c in cells]
            dnn = best(secs[3], secs[4])
            frac = None if sgb is None or gbs[0] is None else gbs[0] / sgb
            xfrac = None if xgb is None or gbs[0] is None else gbs[0] / xgb
            r8, r4, r4g = ratio(dnn, secs[0]), ratio(dnn, secs[1]), ratio(dnn, secs[2])
            print(f"| {st} | {t} | {fmt(sgb, 1)} | {fmt(xgb, 1)} | " + " | ".join(fmt(x, 1) for x in gbs) +
                  f" | {fmt(frac)} | {fmt(xfrac)} | {fmt(r8)} | {fmt(r4)} | {fmt(r4g)} |")
            if st == "l2":
                continue
            where = "L3-resident 4096²" if st == "l3" else "LLaMA-7B layer from DRAM"
            if xfrac is not None:
                rows.append((f"decode INT8 ≥ 85% of stream read (xor reader), {where}, {t} thr", f"{100 * xfrac:.0f}%",
                             mark(xfrac >= 0.85)))
            if frac is not None:
                rows.append((f"decode INT8 / abs-max stream read (informational), {where}, {t} thr", f"{100 * frac:.0f}%", "—"))
            if r8 is not None:
                rows.append((f"decode INT8 ≥ 1.2× oneDNN, {where}, {t} thr", f"{r8:.2f}×", mark(r8 >= 1.2)))
            for name, r in (("W4A8 per-channel", r4), ("W4A8 g128", r4g)):
                if r is not None:
                    rows.append((f"decode {name} ≥ 1.8× oneDNN INT8, {where}, {t} thr", f"{r:.2f}×", mark(r >= 1.8)))
    print()

    # 2. Two threads that scale (gemm_bench shapes with M >= 16).
    shapes = sorted({tuple(int(x) for x in re.match(r".*/M:(\d+)/K:(\d+)/N:(\d+)", k).groups())
                     for k in g if k.startswith("sasq_s8s8_f32/")})
    big = [s for s in shapes if s[0] >= 16 and s[1] > 172]
    small = [s for s in shapes if s[0] > 1 and s[1] <= 172 and s[2] <= 172]
    print("### GEMM, M ≥ 16: sasq vs the faster oneDNN int8 matmul (time ratio, > 1 = sasq faster), and W4A8 / INT8 GOPS\n")
    print(SAME_WORK_NOTE)
    print("| M, K, N | threads | s8s8 / oneDNN | u8s8 / oneDNN | W4A8 g128 / oneDNN | W4A8 / sasq INT8 (GOPS) |"
          " sasq / oneDNN same-work (f32 + scales) |")
    print("|---|---|---|---|---|---|---|")
    for (m, k, n) in big:
        for t in (1, 2):
            dnn = best(gemm_time(g, "onednn_s8s8_s32", m, k, n, t), gemm_time(g, "onednn_u8s8_s32", m, k, n, t))
            s8, u8, w4 = (gemm_time(g, i, m, k, n, t) for i in ("sasq_s8s8_f32", "sasq_u8s8_f32", "sasq_w4a8g128_s8_f32"))
            r = [ratio(dnn, x) for x in (s8, u8, w4)]
            w4r = ratio(best(s8, u8), w4)
            same = ratio(gemm_time(g, "onednn_u8s8_f32", m, k, n, t), best(s8, u8))
            print(f"| {m}, {k}, {n} | {t} | " + " | ".join(fmt(x) for x in r) + f" | {fmt(w4r)} | {fmt(same)} |")
            if r[0] is not None:
                fast = max(x for x in r[:2] if x is not None)
                rows.append((f"gemm {m}×{k}×{n}, {t} thr: sasq INT8 ≥ 1.0× oneDNN", f"{fast:.2f}×", mark(fast >= 1.0)))
            if m >= 128 and w4r is not None:
                rows.append((f"gemm {m}×{k}×{n}, {t} thr: W4A8 ≥ 0.95× sasq INT8 GOPS", f"{w4r:.2f}×", mark(w4r >= 0.95)))
    print()

    # 3. Small shapes, with packing and epilogue timed apart (issue 12 items 2 and 3: the oneDNN target
    #    holds at 1 and 2 threads for every M >= 16 shape; the Eigen target and the breakdown at 1 thread).
    print("### The model's own shapes: sasq vs oneDNN and Eigen FP32, and where sasq's time goes (Eigen, pack A and K = 8 columns at 1 thread)\n")
    print(SAME_WORK_NOTE)
    print("| M, K, N | threads | sasq INT8 µs | / oneDNN | sasq / oneDNN same-work (f32 + scales) | / Eigen FP32 | pack A µs |"
          " same call at K = 8 µs | K = 8 call / full call |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (m, k, n) in small:
        for t in (1, 2):
            s8 = best(gemm_time(g, "sasq_s8s8_f32", m, k, n, t), gemm_time(g, "sasq_u8s8_f32", m, k, n, t))
            dnn = best(gemm_time(g, "onednn_s8s8_s32", m, k, n, t), gemm_time(g, "onednn_u8s8_s32", m, k, n, t))
            if s8 is None:
                continue
            eig = gemm_time(g, "eigen_f32", m, k, n, t) if t == 1 else None
            pack = gemm_time(g, "sasq_pack_a_s8", m, k, n, t) if t == 1 else None
            store = gemm_time(g, "sasq_s8s8_f32_k8", m, 8, n, t) if t == 1 else None
            share = None if None in (store, s8) else store / s8
            r1, r2 = ratio(dnn, s8), ratio(eig, s8)
            same = ratio(gemm_time(g, "onednn_u8s8_f32", m, k, n, t), s8)
            print(f"| {m}, {k}, {n} | {t} | {fmt(s8 * 1e6)} | {fmt(r1)} | {fmt(same)} | {fmt(r2)} | "
                  f"{fmt(pack and pack * 1e6)} | {fmt(store and store * 1e6)} | {fmt(100 * share, 0) + '%' if share else '—'} |")
            thr = "" if t == 1 else f", {t} thr"
            if r1 is not None:
                rows.append((f"small {m}×{k}×{n}{thr}: ≥ 1.0× oneDNN", f"{r1:.2f}×", mark(r1 >= 1.0)))
            if same is not None:
                rows.append((f"small {m}×{k}×{n}{thr}: sasq / oneDNN same-work (f32 + scales) (informational)",
                             f"{same:.2f}×", "—"))
            if r2 is not None:
                rows.append((f"small {m}×{k}×{n}: ≥ 2× Eigen FP32", f"{r2:.2f}×", mark(r2 >= 2.0)))
    print()

    # 4. The LLaMA-7B-shaped block.
    variants = ["fp32_eigen", "w8a8_dynamic", "w8a8_static", "w4a8_static", "w4a8g128_static", "onednn_w8a8_dynamic"]
    print("### LLaMA-7B-shaped decoder block: tokens/s (rel_err = ‖y − y_fp32‖ / ‖y_fp32‖ of the block output)\n")
    print("| variant | prefill 512, 1 thr | prefill, 2 thr | decode (KV 512), 1 thr | decode, 2 thr | rel_err prefill | rel_err decode |")
    print("|---|---|---|---|---|---|---|")
    tok = {}
    for v in variants:
        cells = []
        for phase in ("prefill", "decode"):
            for t in (1, 2):
                b = blk.get(f"block_{phase}/{v}/threads:{t}")
                tok[(v, phase, t)] = b["tokens_per_s"] if b else None
                cells.append(fmt(tok[(v, phase, t)], 1))
        errs = [blk.get(f"block_{p}/{v}/threads:1", {}).get("rel_err") for p in ("prefill", "decode")]
        print(f"| {v} | " + " | ".join(cells) + f" | {fmt(errs[0], 4)} | {fmt(errs[1], 4)} |")
    print()
    for t in (1, 2):
        st, fp, dn = (tok[(v, "prefill", t)] for v in ("w8a8_static", "fp32_eigen", "onednn_w8a8_dynamic"))
        dy = tok[("w8a8_dynamic", "prefill", t)]
        if st and fp:
            rows.append((f"block prefill, {t} thr: W8A8 static ≥ 3× FP32 Eigen", f"{st / fp:.2f}×", mark(st / fp >= 3)))
        if st and dn:
            rows.append((f"block prefill, {t} thr: W8A8 static ≥ 1.0× oneDNN block", f"{st / dn:.2f}×", mark(st / dn >= 1)))
        if st and dy:
            rows.append((f"block prefill, {t} thr: static (fused quantize) vs dynamic (informational)", f"{st / dy:.2f}×", "—"))
        s8 = tok[("w8a8_static", "decode", t)]
        for v4, name in (("w4a8_static", "W4A8 per-channel"), ("w4a8g128_static", "W4A8 g128")):
            s4 = tok[(v4, "decode", t)]
            if s8 and s4:
                rows.append((f"block decode, {t} thr: {name} static ≥ 1.7× W8A8 static", f"{s4 / s8:.2f}×", mark(s4 / s8 >= 1.7)))

    print("### Targets of issue 12\n")
    print("| target | measured | verdict |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    met = sum(1 for r in rows if r[2] == "**met**")
    print(f"\n{met} of {sum(1 for r in rows if r[2] != '—')} met.\n")
    for ctx, name in ((gctx, "gemm_bench"), (dctx, "decode_bench"), (bctx, "block_bench")):
        print(f"* {name}: started {ctx.get('date')}, load average at its start {ctx.get('load_avg')}")
    for e in gerr + derr + berr:
        print(f"* ERROR {e}")
    print()

    if len(sys.argv) > 4:
        fig, axes = plt.subplots(1, 2, figsize=(15, 5.5))
        ax = axes[0]
        labels = [f"{p} {t} thr" for p in ("prefill", "decode") for t in (1, 2)]
        width = 0.8 / len(variants)
        for j, v in enumerate(variants):
            ys = [tok[(v, p, t)] or 0 for p in ("prefill", "decode") for t in (1, 2)]
            ax.bar([i + (j - len(variants) / 2 + 0.5) * width for i in range(4)], ys, width, label=v)
        ax.set_xticks(range(4))
        ax.set_xticklabels(labels)
        ax.set_yscale("log")
        ax.set_ylabel("tokens / s")
        ax.set_title("LLaMA-7B-shaped decoder block")
        ax.legend(fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax = axes[1]
        impls = ["sasq_int8", "sasq_w4a8", "sasq_w4a8g128", "onednn_s8s8", "onednn_u8s8"]
        groups = [(s, t) for s in ("l3", "layer7b") for t in (1, 2)]
        width = 0.8 / len(impls)
        for j, i in enumerate(impls):
            ys = [(d.get(f"decode_{s}/{i}/threads:{t}") or {}).get("GBps") or 0 for (s, t) in groups]
            ax.bar([k + (j - len(impls) / 2 + 0.5) * width for k in range(len(groups))], ys, width, label=i)
        for k, (s, t) in enumerate(groups):  # the stream read of the same size class, same run
            sr = d.get(f"read_xor/bytes:{(1 << 24) if s == 'l3' else (1 << 30)}/threads:{t}")
            if sr:
                ax.hlines(sr["GBps"], k - 0.45, k + 0.45, colors="black", linestyles="dashed",
                          label="stream read (xor reader)" if k == 0 else None)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{'4096² (L3)' if s == 'l3' else '7B layer (DRAM)'}\n{t} thr" for s, t in groups])
        ax.set_ylabel("GB/s of packed weights (higher is better)")
        ax.set_title("decode M = 1: weight bytes per second vs stream read (dashed)")
        ax.legend(fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(sys.argv[4], dpi=110)


if __name__ == "__main__":
    main()
