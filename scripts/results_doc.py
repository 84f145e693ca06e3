#!/usr/bin/python3
"""Regenerates docs/results.md from one full run of scripts/experiment.sh: every block between
<!-- sasq-experiment:NAME --> and <!-- /sasq-experiment:NAME --> markers in the page is replaced by the
block of the same name from the run's results.md (the tables, the targets, the timing) and from its
run_info.txt (commit and machine state, written by scripts/experiment.sh); results.png is copied to
docs/img/results.png. The hand-written paragraphs around the blocks stay; check that they still
match the numbers.

usage: scripts/results_doc.py [RESULTS_DIR [DOC]]   (defaults: results docs/results.md)"""
import os
import re
import sys
import tempfile

BLOCK = re.compile(r"<!-- sasq-experiment:([a-z]+) -->\n(.*?)<!-- /sasq-experiment:\1 -->\n", re.S)


def blocks(text: str) -> dict:
    return {m.group(1): m.group(2) for m in BLOCK.finditer(text)}


def write_atomic(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".results_doc.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(results: str, doc: str) -> int:
    for name in ("results.md", "run_info.txt", "results.png"):
        if not os.path.isfile(os.path.join(results, name)):
            print(f"results_doc: {results}/{name} is missing (run scripts/experiment.sh first)", file=sys.stderr)
            return 1
    with open(os.path.join(results, "results.md"), encoding="utf-8") as f:
        new = blocks(f.read())
    with open(os.path.join(results, "run_info.txt"), encoding="utf-8") as f:
        new["run"] = f.read()
    if "--quick" in new.get("timing", ""):
        print(f"results_doc: {results} holds a --quick run; docs/results.md describes a full run", file=sys.stderr)
        return 1
    with open(doc, encoding="utf-8") as f:
        page = f.read()
    wanted = blocks(page)
    missing = sorted(set(wanted) - set(new))
    if missing:
        print(f"results_doc: {results} has no block(s) {', '.join(missing)} that {doc} needs", file=sys.stderr)
        return 1
    page = BLOCK.sub(lambda m: f"<!-- sasq-experiment:{m.group(1)} -->\n{new[m.group(1)]}<!-- /sasq-experiment:{m.group(1)} -->\n", page)
    write_atomic(doc, page.encode("utf-8"))
    png = os.path.join(results, "results.png")
    img = os.path.join(os.path.dirname(doc), "img", "results.png")
    with open(png, "rb") as f:
        write_atomic(img, f.read())
    print(f"results_doc: {doc} blocks {', '.join(sorted(wanted))} and {img} from {results}")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) > 2 or any(a.startswith("-") for a in args):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(args[0] if args else "results", args[1] if len(args) > 1 else "docs/results.md"))
