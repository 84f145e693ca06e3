#!/usr/bin/env bash
# Installs the Debian packages sasq's build, tests, benchmarks and plots need (only those missing).
set -euo pipefail
pkgs=(cmake ninja-build g++ clang libclang-rt-14-dev ccache libeigen3-dev doctest-dev libbenchmark-dev libdnnl-dev
      ocl-icd-opencl-dev opencl-headers libcli11-dev nlohmann-json3-dev
      libopenblas-dev python3-matplotlib)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# cuobjdump/nvdisasm for the CUDA SASS check (CUDA 13 here ships without them): Debian's non-free
# nvidia-cuda-toolkit binaries, extracted to /opt/sasq-cuda-tools/bin (tests/cuda/fetch_sass_tools.sh).
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  bash tests/cuda/fetch_sass_tools.sh || echo "deps: SASS tools unavailable; the SASS check will be skipped"
fi
