#!/usr/bin/env bash
# Installs flowpic's build and test dependencies (Debian 12 packages only), then configures
# and builds into ./build (or $FLOWPIC_BUILD). Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential pkg-config meson ninja-build cmake
  dpdk dpdk-dev libdpdk-dev            # dataplane (22.11), dpdk-testpmd, dpdk-telemetry.py
  libdnnl-dev ocl-icd-opencl-dev       # CNN inference and training (oneDNN 2.6); its CMake config needs OpenCL
  libtbb-dev libhwloc-dev              # FlowPic builders, core placement
  libspdlog-dev libpcap-dev            # logs, offline capture reading
  libgtest-dev libgmock-dev            # tests
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev   # configs, command lines, model metadata/JSON output
  libxxhash-dev zlib1g-dev libcairo2-dev            # flow hashing, model checksums, PNG figures
  python3 iproute2 tcpdump             # test harness helpers (dpdk-telemetry.py, pcap checks)
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD="${FLOWPIC_BUILD:-build}"
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" >/dev/null
fi
ninja -C "$BUILD"
