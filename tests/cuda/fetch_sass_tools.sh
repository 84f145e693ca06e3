#!/usr/bin/env bash
# Provides cuobjdump and nvdisasm for the SASS check when the CUDA toolkit lacks them (the pip-style
# CUDA 13 toolkit here ships no binary utilities): downloads Debian bookworm's nvidia-cuda-toolkit
# package (non-free, CUDA 11.8) with a private apt configuration and extracts only those two
# static binaries to $1 (default /opt/sasq-cuda-tools/bin). Nothing is installed system-wide.
set -euo pipefail
dest="${1:-/opt/sasq-cuda-tools/bin}"
if [ -x "$dest/cuobjdump" ] && [ -x "$dest/nvdisasm" ]; then exit 0; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
# The machine's own Debian mirror (first URIs of debian.sources, or the first deb line), non-free component.
mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
[ -n "$mirror" ] || mirror="$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
[ -n "$mirror" ] || { echo "sasq: no Debian mirror configured" >&2; exit 1; }
echo "deb $mirror bookworm non-free" > "$work/sources.list"
apt_opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=- \
          -o Dir::State::Lists="$work/lists" -o Dir::Cache::Archives="$work/archives" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" download nvidia-cuda-toolkit)
dpkg-deb -x "$work"/nvidia-cuda-toolkit_*.deb "$work/x"
mkdir -p "$dest"
install -m 0755 "$work/x/usr/bin/cuobjdump" "$work/x/usr/bin/nvdisasm" "$dest/"
echo "sasq: cuobjdump and nvdisasm in $dest"
