#!/usr/bin/env python3
"""Checks the compiled GEMM kernels without a GPU.

For each architecture given as ARCH=CUBIN=PTXAS_LOG:
  * SASS (cuobjdump -sass or nvdisasm): every tensor-core GEMM kernel (gemm_tc_kernel) contains
    integer tensor-core MMA instructions (IMMA.16832.S8.S8), asynchronous copies (LDGSTS) and
    ldmatrix (LDSM); every decode kernel (gemv_decode_kernel) contains IDP.4A;
  * ptxas -v log: every kernel reports 0 bytes spill stores, 0 bytes spill loads and a 0-byte stack
    frame (no local memory).
A disassembler from an older toolkit (e.g. Debian's CUDA 11.8) cannot read the ELF header that CUDA 13
writes (ABI version 8, new e_flags); for those the cubin is disassembled from a copy whose header is
rewritten to the legacy layout (ABI 7, e_flags = sm | sm << 16 | 64-bit), the code itself untouched.
Exits 77 (ctest SKIP_RETURN_CODE) when no disassembler was found.
"""
import re
import shutil
import struct
import subprocess
import sys
import tempfile

SKIP = 77


def legacy_copy(cubin, arch):
    data = bytearray(open(cubin, "rb").read())
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise SystemExit(f"{cubin}: not a 64-bit ELF cubin")
    sm = int(arch)  # legacy EF_CUDA_SM: the number itself (80 = 0x50, 90 = 0x5a)
    data[8] = 7  # EI_ABIVERSION
    struct.pack_into("<I", data, 48, sm | 0x500 | (sm << 16))  # e_flags (64-bit ELF)
    tmp = tempfile.NamedTemporaryFile(suffix=f"_sm{arch}.cubin", delete=False)
    tmp.write(data)
    tmp.close()
    return tmp.name


def disassemble(tool, cubin, arch):
    args = [tool, "-sass", cubin] if tool.endswith("cuobjdump") else [tool, cubin]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode == 0 and ("Function" in out.stdout or ".text." in out.stdout):
        return out.stdout, False
    legacy = legacy_copy(cubin, arch)
    args[-1] = legacy
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{tool} failed on {cubin} (also on a legacy-header copy):\n{out.stderr}")
    return out.stdout, True


def split_functions(sass):
    """Maps each function name to its SASS text (cuobjdump 'Function : X' or nvdisasm '.text.X:')."""
    funcs, name, body = {}, None, []
    for line in sass.splitlines():
        m = re.match(r"\s*Function : (\S+)", line) or re.match(r"\s*\.text\.(\S+?):", line)
        if m:
            if name:
                funcs[name] = "\n".join(body)
            name, body = m.group(1), []
        elif name:
            body.append(line)
    if name:
        funcs[name] = "\n".join(body)
    return funcs


def check_sass(tool, arch, cubin):
    sass, legacy = disassemble(tool, cubin, arch)
    funcs = split_functions(sass)
    failures = []
    checked = 0
    for name, body in sorted(funcs.items()):
        imma = len(re.findall(r"\bIMMA\.16832\.S8\.S8\b", body))
        idp = len(re.findall(r"\bIDP\.4A\b", body))
        if "gemm_tc_kernel" in name:
            checked += 1
            ldgsts = len(re.findall(r"\bLDGSTS\b", body))
            ldsm = len(re.findall(r"\bLDSM\b", body))
            print(f"sm_{arch} {name}: {imma} x IMMA.16832.S8.S8, {ldgsts} x LDGSTS (cp.async), {ldsm} x LDSM (ldmatrix)")
            if imma == 0:
                failures.append(f"sm_{arch}: no IMMA.16832.S8.S8 in {name}")
            if ldgsts == 0 or ldsm == 0:
                failures.append(f"sm_{arch}: {name} lacks cp.async (LDGSTS) or ldmatrix (LDSM)")
        elif "gemv_decode_kernel" in name:
            checked += 1
            print(f"sm_{arch} {name}: {idp} x IDP.4A")
            if idp == 0:
                failures.append(f"sm_{arch}: no IDP.4A in {name}")
    if checked == 0:
        failures.append(f"sm_{arch}: no GEMM kernels found in {cubin} ({len(funcs)} functions)")
    note = " (legacy-header copy)" if legacy else ""
    print(f"sm_{arch}: disassembled {cubin} with {tool}{note}, {checked} GEMM kernels")
    return failures


def check_spills(arch, log):
    text = open(log).read()
    failures = []
    found = 0
    pattern = re.compile(
        r"Function properties for (\S+)\s*\n\s*(\d+) bytes stack frame, (\d+) bytes spill stores, "
        r"(\d+) bytes spill loads")
    for name, frame, stores, loads in pattern.findall(text):
        found += 1
        print(f"sm_{arch} {name}: {frame} bytes stack frame, {stores} bytes spill stores, {loads} bytes spill loads")
        if int(frame) or int(stores) or int(loads):
            failures.append(f"sm_{arch}: {name} uses local memory ({frame} frame, {stores} stores, {loads} loads)")
    if found == 0:
        failures.append(f"sm_{arch}: no 'Function properties' entries in {log} (was -Xptxas -v passed?)")
    return failures


def main(argv):
    tools = [t for t in argv[1].split(";") if t and shutil.which(t)]
    specs = [a.split("=") for a in argv[2:]]
    failures = []
    for arch, cubin, log in specs:
        failures += check_spills(arch, log)
    if not tools:
        print("no cuobjdump/nvdisasm found: SASS check skipped (see tests/cuda/fetch_sass_tools.sh)")
        if failures:
            print("\n".join(failures))
            return 1
        return SKIP
    for arch, cubin, log in specs:
        failures += check_sass(tools[0], arch, cubin)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("all GEMM kernels use integer tensor-core MMA / dp4a and no local memory")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
