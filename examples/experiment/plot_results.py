#!/usr/bin/python3
"""Plots results.csv of sasq-experiment: perplexity change vs FP32 (%, symmetric log scale) per method
and bit width, one panel per (model variant, text). Run with Debian's /usr/bin/python3 (python3-matplotlib)."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, dst: str) -> None:
    rows = list(csv.DictReader(open(src, newline="")))
    panels = sorted({(r["variant"], r["text"]) for r in rows}, key=lambda p: (p[0] != "plain", p))
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != "FP32"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 3.6 * len(panels)), squeeze=False)
    for ax, (variant, text) in zip(axes[:, 0], panels):
        sel = [r for r in rows if r["variant"] == variant and r["text"] == text]
        fp32 = next(float(r["ppl"]) for r in sel if r["method"] == "FP32")
        bits = list(dict.fromkeys(
            f"W{r['weight_bits']}A{r['act_bits']}" + (f"-g{r['weight_group']}" if r["weight_group"] != "0" else "")
            for r in sel if r["method"] != "FP32"))
        width = 0.8 / len(methods)
        for i, m in enumerate(methods):
            ys = []
            for b in bits:
                match = [float(r["ppl"]) for r in sel if r["method"] == m and
                         f"W{r['weight_bits']}A{r['act_bits']}" + (f"-g{r['weight_group']}" if r["weight_group"] != "0" else "") == b]
                ys.append(100.0 * (match[0] / fp32 - 1.0) if match else float("nan"))
            xs = [j + (i - len(methods) / 2 + 0.5) * width for j in range(len(bits))]
            style = {"edgecolor": "black", "linewidth": 1.2} if m.startswith("SASQ") else {}
            ax.bar(xs, ys, width, label=m, color=plt.cm.tab20(i / max(1, len(methods) - 1)), **style)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_xticks(range(len(bits)))
        ax.set_xticklabels(bits)
        ax.set_ylabel("ppl change vs FP32 (%)")
        ax.set_title(f"stories260K ({variant}) on {text}: FP32 ppl {fp32:.4g}")
    axes[0, 0].legend(ncol=4, fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot_results.py results.csv out.png")
    main(sys.argv[1], sys.argv[2])
