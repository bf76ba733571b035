#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (run as root, or with sudo available):
#
#   deploy/bootstrap.sh run [backpackd flags...]   install what is missing, build, run a node
#                                                  (default: 127.0.0.1:8080, data in ./data)
#   deploy/bootstrap.sh test                       install what is missing, build, run every test
#   deploy/bootstrap.sh build                      install build dependencies and build
#   deploy/bootstrap.sh bench                      also install wrk and nginx for bench/
#
# Only Debian's packages are used; nothing is downloaded from anywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libssl-dev nlohmann-json3-dev librocksdb-dev libfmt-dev libtomlplusplus-dev
  zlib1g-dev
)
# chromium renders share pages headless in tests/integration/share_test.cc.
TEST_PACKAGES=(libgtest-dev python3 python3-aiosmtpd openssl chromium fonts-dejavu-core)
BENCH_PACKAGES=(wrk nginx-light curl)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

build() {
  local tests=$1
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBACKPACK_TESTS="$tests"
  cmake --build build -j "$(nproc)"
}

mode=${1:-}
[ $# -gt 0 ] && shift
case "$mode" in
  run)
    install_missing "${BUILD_PACKAGES[@]}"
    build OFF
    if [ $# -eq 0 ]; then set -- --listen 127.0.0.1:8080 --data-dir ./data; fi
    exec build/daemon/backpackd "$@"
    ;;
  test)
    install_missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    # Node runs the cross-checks against an independent Open Badges baker
    # (tests/bakery) and the DCC credential libraries (tests/dcc), each
    # pinned by its package-lock.json.
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then install_missing nodejs npm; fi
    npm ci --prefix tests/bakery --no-audit --no-fund --loglevel=error
    npm ci --prefix tests/dcc --no-audit --no-fund --loglevel=error
    build ON
    ctest --test-dir build --output-on-failure -j 2 --timeout 600
    ;;
  build)
    install_missing "${BUILD_PACKAGES[@]}"
    build OFF
    ;;
  bench)
    install_missing "${BUILD_PACKAGES[@]}" "${BENCH_PACKAGES[@]}"
    build OFF
    ;;
  *)
    sed -n '2,10p' "$0"
    exit 2
    ;;
esac
