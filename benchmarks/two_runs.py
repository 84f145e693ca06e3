#!/usr/bin/python3
"""Merge two run_all.sh runs (their report.md) for docs/performance.md: the issue-12 targets with both
runs' values and one verdict (met in both / met in one / missed in both), then each report table as
"Run 1:" and "Run 2:".

usage: /usr/bin/python3 benchmarks/two_runs.py RUN1_DIR RUN2_DIR > merged.md
"""
import re
import sys


def sections(path):
    """report.md -> {heading: [lines]} in order (### headings)."""
    out, name = {}, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("### "):
            name = line[4:]
            out[name] = []
        elif name is not None:
            out[name].append(line)
    return out


def target_rows(lines):
    rows = []
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("target", "---"):
            rows.append(cells)
    return rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    runs = [sections(f"{d}/report.md") for d in sys.argv[1:3]]
    targets = [k for k in runs[0] if k.startswith("Targets")]
    if not targets or targets[0] not in runs[1]:
        sys.exit("two_runs: no 'Targets' section in both report.md files")
    t1, t2 = (target_rows(r[targets[0]]) for r in runs)
    if [r[0] for r in t1] != [r[0] for r in t2]:
        sys.exit("two_runs: the two runs list different targets")
    print("| target | run 1 | run 2 | verdict |\n|---|---|---|---|")
    counts = {"**met**": 0, "met in one run": 0, "**missed**": 0}
    for a, b in zip(t1, t2):
        if a[2] == "—":
            verdict = "(informational)"
        else:
            met = (a[2] == "**met**") + (b[2] == "**met**")
            verdict = ["**missed**", "met in one run", "**met**"][met]
            counts[verdict] += 1
        print(f"| {a[0]} | {a[1]} | {b[1]} | {verdict} |")
    print(f"\nMet in both runs: {counts['**met**']}; in one of the two: {counts['met in one run']}; "
          f"missed in both: {counts['**missed**']}.")
    for name in runs[0]:
        if name == targets[0]:
            continue
        print(f"\n### {name}")
        for i, r in enumerate(runs, 1):
            body = [l for l in r.get(name, []) if l.startswith("|")]
            notes = [l for l in r.get(name, []) if l and not l.startswith("|")]
            if i == 1 and notes:
                print("\n" + "\n".join(notes))
            print(f"\nRun {i}:\n")
            print("\n".join(body))
    for i, r in enumerate(runs, 1):
        starts = [l for l in r[targets[0]] if l.startswith("* ")]
        if starts:
            print(f"\nRun {i} starts:\n" + "\n".join(starts))


if __name__ == "__main__":
    main()
