#!/usr/bin/env bash
# Installs everything Freshet needs to build, test and run on Debian 12, through apt
# only. Idempotent: when every package is already present it does nothing and
# touches no package lists, so `make test` pays for it once per machine.
#
# Usage: ops/install-deps.sh [--bench]   (--bench adds the PyTorch CPU peer, ~800 MB)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  librdkafka-dev kcat
  librocksdb-dev
  libtcmalloc-minimal4
  libeigen3-dev
  libprotobuf-dev protobuf-compiler
  libboost-dev libboost-system-dev
  libssl-dev
  zlib1g-dev
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
  prometheus
  chromium chromium-driver
  libjs-chart.js
  wrk
  python3-confluent-kafka
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch libopenblas0-pthread)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} missing packages: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends keeps chromium and prometheus from pulling in desktops.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
