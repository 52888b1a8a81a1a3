#!/usr/bin/env bash
# install-cuda-toolkit.sh: install nvcc and cuda.h (Debian's nvidia-cuda-toolkit and
# nvidia-cuda-dev, CUDA 11.8, about 1.5 GB to download) from Debian's contrib and
# non-free components, adding them to apt's sources first when they are missing.
# Needs root. `make cuda` runs it when nvcc is not on PATH.
set -euo pipefail
if command -v nvcc >/dev/null && [ -f /usr/include/cuda.h ]; then
  echo "nvcc and cuda.h are already installed" >&2
  exit 0
fi
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
if ! grep -rqs 'non-free' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  $SUDO tee /etc/apt/sources.list.d/nonfree.sources >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends nvidia-cuda-toolkit nvidia-cuda-dev
nvcc --version | grep release
