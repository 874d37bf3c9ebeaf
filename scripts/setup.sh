#!/usr/bin/env bash
# Installs flowpic's build and test dependencies (Debian 12 packages only), then configures
# and builds into ./build (or $FLOWPIC_BUILD). Safe to run again: it only does what is missing.
# Every step says what it does; a failing step prints the end of its log and the fix when known.
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
  nfdump pmacct                        # IPFIX export tests against real collectors (nfcapd/nfdump, nfacctd)
  softflowd                            # the IPFIX bench's peer: another exporter into the same nfcapd
)

BUILD="${FLOWPIC_BUILD:-build}"
LOGS="$BUILD/setup-logs"
mkdir -p "$LOGS"

# fail STEP LOG HINT: the step, the last lines of its log, what to do.
fail() {
  echo "setup: $1 failed (full log: $2)" >&2
  echo "---- last lines of $2 ----" >&2
  tail -n 25 "$2" >&2 || true
  echo "----" >&2
  [ -n "${3:-}" ] && echo "setup: $3" >&2
  exit 1
}

SUDO=""
if [ "$(id -u)" -ne 0 ] && [ "${FLOWPIC_SKIP_PACKAGES:-0}" != 1 ]; then
  command -v sudo >/dev/null || { echo "setup: not root and no sudo: run as root, or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi
missing=()
# FLOWPIC_SKIP_PACKAGES=1: configure and build only (tests of this script must not run apt).
[ "${FLOWPIC_SKIP_PACKAGES:-0}" = 1 ] && PACKAGES=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq > "$LOGS/apt-update.log" 2>&1 ||
    fail "apt-get update" "$LOGS/apt-update.log" "check the network and /etc/apt/sources.list (Debian 12 'bookworm' with main)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" > "$LOGS/apt-install.log" 2>&1 ||
    fail "apt-get install" "$LOGS/apt-install.log" "a package may be missing from your mirror: this needs Debian 12 (bookworm)"
  echo "setup: packages installed"
elif [ "${FLOWPIC_SKIP_PACKAGES:-0}" = 1 ]; then
  echo "setup: package step skipped (FLOWPIC_SKIP_PACKAGES=1)"
else
  echo "setup: all ${#PACKAGES[@]} Debian packages present"
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  echo "setup: configuring $BUILD (meson)"
  meson setup "$BUILD" > "$LOGS/meson-setup.log" 2>&1 ||
    fail "meson setup" "$LOGS/meson-setup.log" "a missing dependency is named above; 'bash scripts/setup.sh' installs them all (re-run it after removing $BUILD)"
fi
echo "setup: building $BUILD (ninja${FLOWPIC_TARGETS:+ ${FLOWPIC_TARGETS}})"
# shellcheck disable=SC2086
ninja -C "$BUILD" ${FLOWPIC_TARGETS:-} || { echo "setup: the build failed (compiler output above)" >&2; exit 1; }
