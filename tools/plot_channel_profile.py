#!/usr/bin/python3
"""Channel-magnitude profile of one activation site under each transform (arXiv 2506.01967 figure style).

Input: a CSV with header  layer,site,transform,channel,magnitude  (one row per input channel j,
magnitude = ||X[:, j]||_2 over tokens), as written by sasq::write_channel_profile_csv (e.g. by
tools/channel_profile). Any producer of that CSV works, including the LLaMA CLI's statistics.

Writes <out>_profiles.png (one panel per transform, shared y axis, in CSV order) and, with
--alpha, <out>_alpha.png from a CSV  layer,site,alpha,error  (SmoothRot alpha sweep).

Run with Debian's interpreter, which has matplotlib:
  /usr/bin/python3 tools/plot_channel_profile.py PROFILE.csv --layer 0 --site down_in --out docs/img/transforms_down_in
"""
import argparse
import csv
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TITLES = {"original": "original", "smooth": "smoothed", "rotate": "rotated", "smooth_rotate": "smoothed + rotated"}


def read_profiles(path, layer, site):
    """{transform: [magnitude by channel]} for one layer/site, transforms in file order."""
    out = OrderedDict()
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"layer", "site", "transform", "channel", "magnitude"} - set(reader.fieldnames or [])
        if missing:
            sys.exit(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            if int(row["layer"]) != layer or row["site"] != site:
                continue
            mags = out.setdefault(row["transform"], {})
            mags[int(row["channel"])] = float(row["magnitude"])
    if not out:
        sys.exit(f"{path}: no rows for layer {layer}, site {site}")
    return OrderedDict((t, [m[j] for j in sorted(m)]) for t, m in out.items())


def unbiased_std(v):
    mean = sum(v) / len(v)
    return (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) ** 0.5


def plot_profiles(profiles, layer, site, out):
    n = len(profiles)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.0), sharey=True, squeeze=False)
    for ax, (transform, mags) in zip(axes[0], profiles.items()):
        ax.bar(range(len(mags)), mags, width=1.0, color="tab:blue", linewidth=0)
        ax.set_title(f"{TITLES.get(transform, transform)}\nQD = {unbiased_std(mags):.3g}", fontsize=10)
        ax.set_xlabel("channel j")
        ax.set_xlim(-0.5, len(mags) - 0.5)
    axes[0][0].set_ylabel(r"$\|X_{:,j}\|_2$")
    fig.suptitle(f"layer {layer}, {site}: channel magnitudes", fontsize=11)
    fig.tight_layout()
    fig.savefig(f"{out}_profiles.png", dpi=110)
    plt.close(fig)


def plot_alpha(path, layer, site, out):
    alphas, errors = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if int(row["layer"]) == layer and row["site"] == site:
                alphas.append(float(row["alpha"]))
                errors.append(float(row["error"]))
    if not alphas:
        sys.exit(f"{path}: no alpha rows for layer {layer}, site {site}")
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    ax.plot(alphas, errors, marker="o", markersize=3)
    best = min(range(len(errors)), key=errors.__getitem__)
    ax.axvline(alphas[best], color="tab:red", linestyle=":", label=f"best alpha = {alphas[best]:.2f}")
    ax.set_xlabel("alpha")
    ax.set_ylabel("E (4-bit, smooth + rotate)")
    ax.set_title(f"layer {layer}, {site}: SmoothRot alpha sweep", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out}_alpha.png", dpi=110)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile_csv")
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--site", required=True)
    p.add_argument("--out", required=True, help="output prefix (PNG files <out>_profiles.png, <out>_alpha.png)")
    p.add_argument("--alpha", help="alpha-sweep CSV (layer,site,alpha,error)")
    a = p.parse_args()
    plot_profiles(read_profiles(a.profile_csv, a.layer, a.site), a.layer, a.site, a.out)
    if a.alpha:
        plot_alpha(a.alpha, a.layer, a.site, a.out)


if __name__ == "__main__":
    main()
