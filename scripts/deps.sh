#!/usr/bin/env bash
# Installs the Debian packages sasq needs (only those missing), or checks that the list is complete.
#   deps.sh                 everything: build, tests, benchmarks, plots (scripts/test.sh)
#   deps.sh --main          what the main job needs (scripts/experiment.sh): the examples and the plot
#   deps.sh --list          prints the full package list
#   deps.sh --check [DIR..] fails naming any Debian package the build reads (configure of the release
#                           preset, headers and libraries of the build trees DIR) that this list and
#                           its Depends closure do not install, or that the main job's configure
#                           (experiment preset) reads beyond --main's list (scripts/deps_check.py;
#                           run by .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
main_pkgs=(cmake ninja-build g++ libeigen3-dev libcli11-dev nlohmann-json3-dev python3-matplotlib)
# libdnnl-dev's CMake config needs OpenCL's headers and library (ocl-icd-opencl-dev, opencl-headers).
test_pkgs=(ccache clang libclang-rt-14-dev doctest-dev libbenchmark-dev libdnnl-dev ocl-icd-opencl-dev opencl-headers
           libopenblas-dev)
mode=${1:-all}
case "$mode" in
  --main) pkgs=("${main_pkgs[@]}") ;;
  all | --check | --list) pkgs=("${main_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: deps.sh [--main | --list | --check [BUILD_DIR...]]" >&2; exit 2 ;;
esac
if [ "$mode" = --list ]; then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi
if [ "$mode" = --check ]; then
  shift
  # The main job's configure needs only --main's packages; the release build needs the full list.
  python3 scripts/deps_check.py --preset experiment --packages "${main_pkgs[*]}" --must-catch "libeigen3-dev libcli11-dev"
  python3 scripts/deps_check.py --preset release --packages "${pkgs[*]}" --must-catch "ocl-icd-opencl-dev libcli11-dev" "$@"
  exit 0
fi
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
# The main job does not use them.
if [ "$mode" = all ] && { command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; }; then
  bash tests/cuda/fetch_sass_tools.sh || echo "deps: SASS tools unavailable; the SASS check will be skipped"
fi
