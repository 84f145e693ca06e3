#!/usr/bin/env python3
"""Checks that scripts/deps.sh installs every Debian package the build reads (scripts/deps.sh --check).

Collects the system files the build used: every file CMake read while configuring (a
--trace-format=json-v1 trace of the given preset), the tools and libraries recorded in its cache,
the headers of every object in the given build trees (ninja -t deps) and the libraries their link
commands name. Each file is mapped to the Debian package that owns it (dpkg's file lists) and must
belong to the Depends/Pre-Depends closure (not Recommends) of deps.sh's packages or to the
essential/required base system. Exits 1 naming each package that is read but not installed by
deps.sh, with one file of it and who read it.

--must-catch "PKG...": a self-test, run on the same files: with each of these packages left out of
deps.sh's list, the check must fail naming it (e.g. the OpenCL packages Debian's oneDNN config
needs, which a fresh machine once lacked).

usage: deps_check.py [--preset PRESET] --packages "PKG..." [--must-catch "PKG..."] [BUILD_DIR...]
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dpkg_owners():
    """path -> owning package, from /var/lib/dpkg/info/*.list."""
    owners = {}
    for lst in glob.glob("/var/lib/dpkg/info/*.list"):
        pkg = os.path.basename(lst)[: -len(".list")].split(":")[0]
        with open(lst, encoding="utf-8", errors="replace") as f:
            for line in f:
                path = line.rstrip("\n")
                if path and not os.path.isdir(path):
                    owners.setdefault(path, pkg)
    return owners


def installed_packages():
    """name -> (depends, provides, base) for installed packages; depends: list of alternative lists."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${db:Status-Abbrev}\t${Pre-Depends}\t${Depends}\t${Provides}\t"
         "${Essential}\t${Priority}\n"],
        check=True, capture_output=True, text=True).stdout
    pkgs = {}
    for line in out.splitlines():
        name, status, pre, dep, prov, essential, priority = line.split("\t")
        if not status.startswith("ii"):
            continue
        alts = []
        for clause in filter(None, (c.strip() for c in (pre + "," + dep).split(","))):
            alts.append([re.sub(r"[\s(].*|:.*", "", a.strip()) for a in clause.split("|")])
        provides = [re.sub(r"[\s(].*|:.*", "", p.strip()) for p in prov.split(",") if p.strip()]
        pkgs[name] = (alts, provides, essential == "yes" or priority == "required")
    return pkgs


def closure(roots, pkgs):
    """Packages installed by roots through Depends/Pre-Depends, plus the essential/required base."""
    providers = {}
    for name, (_, provides, _) in pkgs.items():
        for p in provides:
            providers.setdefault(p, set()).add(name)
    todo = list(roots) + [n for n, (_, _, base) in pkgs.items() if base]
    seen = set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n not in pkgs:
            continue
        for alts in pkgs[n][0]:
            for a in alts:  # every installed alternative may be the one used
                todo.extend(x for x in ({a} if a in pkgs else set()) | providers.get(a, set()) if x not in seen)
    return seen


def configure_trace(preset, work):
    """Files CMake read while configuring `preset`, and file paths recorded in its cache."""
    build = os.path.join(work, "build")
    trace = os.path.join(work, "trace.json")
    r = subprocess.run(["cmake", "--preset", preset, "-B", build, "--trace-format=json-v1",
                        "--trace-redirect=" + trace], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        sys.exit("deps --check: configuring preset %s failed" % preset)
    files = {}
    with open(trace, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if "file" in e:
                files.setdefault(e["file"], "cmake configure (%s)" % preset)
    with open(os.path.join(build, "CMakeCache.txt"), encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"([^#/][^:=]*):(FILEPATH|STRING|PATH)=(/.*)$", line.rstrip("\n"))
            if m and os.path.isfile(m.group(3)):
                files.setdefault(m.group(3), "CMake cache %s" % m.group(1))
    return files


def build_inputs(build):
    """Headers of every object (ninja -t deps) and libraries named by the link commands of a build tree."""
    files = {}
    deps = subprocess.run(["ninja", "-C", build, "-t", "deps"], capture_output=True, text=True).stdout
    for line in deps.splitlines():
        if line.startswith("    /"):
            files.setdefault(line.strip(), "ninja deps of " + build)
    cmds = subprocess.run(["ninja", "-C", build, "-t", "commands"], capture_output=True, text=True).stdout
    for p in set(re.findall(r"(/(?:usr|lib)[^\s\"';]*\.(?:so|a)(?:\.[0-9]+)*)\b", cmds)):
        files.setdefault(p, "link commands of " + build)
    for tool in set(re.findall(r"^(/\S+)", cmds, re.M)):
        files.setdefault(tool, "build commands of " + build)
    return files


def owner(path, owners):
    """The package owning path, trying its real path and the /usr-merged spellings."""
    cands = [path, os.path.realpath(path)]
    for c in list(cands):
        if c.startswith("/usr/"):
            cands.append(c[4:])
        else:
            cands.append("/usr" + c)
    for c in cands:
        if c in owners:
            return owners[c]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="release")
    ap.add_argument("--packages", required=True)
    ap.add_argument("--must-catch", default="")
    ap.add_argument("builds", nargs="*")
    a = ap.parse_args()
    roots = a.packages.split()
    pkgs = installed_packages()
    missing_roots = [p for p in roots if p not in pkgs]
    if missing_roots:
        sys.exit("deps --check: deps.sh's packages are not installed: %s (run bash scripts/deps.sh)" % " ".join(missing_roots))
    allowed = closure(roots, pkgs)
    with tempfile.TemporaryDirectory(prefix="sasq-deps-") as work:
        files = configure_trace(a.preset, work)
        for b in a.builds:
            if os.path.isfile(os.path.join(b, "build.ninja")):
                for p, why in build_inputs(os.path.abspath(b)).items():
                    files.setdefault(p, why)
        owners = dpkg_owners()
        used, foreign = {}, 0
        for path, why in sorted(files.items()):
            real = os.path.realpath(path)
            if real.startswith((ROOT + "/", work + "/", "/tmp/", "/proc/")) or not os.path.exists(path):
                continue
            pkg = owner(path, owners)
            if pkg is None:
                if os.environ.get("SASQ_DEPS_VERBOSE"):
                    print("deps --check: outside any package: %s (read by %s)" % (path, why))
                foreign += 1  # /usr/local, /opt (e.g. a CUDA toolkit from NVIDIA's installer): not Debian's
                continue
            used.setdefault(pkg, (path, why))
    bad = {p: v for p, v in used.items() if p not in allowed}
    print("deps --check: %d files read, from %d Debian packages (%d files outside any package); "
          "%d packages allowed (deps.sh + Depends closure + base system)"
          % (len(files), len(used), foreign, len(allowed)))
    if os.environ.get("SASQ_DEPS_VERBOSE"):
        for p, (path, why) in sorted(used.items()):
            print("deps --check: uses %s: %s (read by %s)" % (p, path, why))
    for p, (path, why) in sorted(bad.items()):
        print("deps --check: package %s is used but not installed by scripts/deps.sh: %s (read by %s)" % (p, path, why))
    for p in a.must_catch.split():
        fewer = closure([r for r in roots if r != p], pkgs)
        if p not in used or p in fewer:
            print("deps --check: self-test failed: leaving %s out of deps.sh would go unnoticed" % p)
            bad[p] = None
        else:
            print("deps --check: self-test: leaving %s out of deps.sh is caught" % p)
    if bad:
        sys.exit(1)
    print("deps --check: ok")


if __name__ == "__main__":
    main()
