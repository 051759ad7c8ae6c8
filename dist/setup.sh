#!/usr/bin/env bash
# The two set-up commands of the README, for a fresh Debian 12 machine:
#   bash dist/setup.sh start   install what is missing, build, start the kernel
#   bash dist/setup.sh test    install what is missing, build, run every test
# Run as root (or with sudo available) so missing packages can be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: bash dist/setup.sh start|test" >&2; exit 2; }
[ $# -eq 1 ] || usage
MODE=$1
case "$MODE" in start|test) ;; *) usage ;; esac

PACKAGES=(cmake g++ ninja-build ccache pkg-config
  libboost-dev libboost-program-options-dev libpoco-dev libspdlog-dev
  libgtest-dev libgmock-dev libpq-dev libhowardhinnant-date-dev libvalijson-dev nlohmann-json3-dev libsqlite3-dev libcsv-dev clang-format
  libhiredis-dev)

# The console's bundle is built with Node.js and npm (the machine's own when
# present, else Debian's); its browser tests run in Debian's Chromium.
command -v node >/dev/null && command -v npm >/dev/null || PACKAGES+=(nodejs npm)
# Tests: Chromium for the console; promtool (Debian's prometheus) checks
# /metrics with Prometheus's own parser; the e-mail channel's tests deliver
# to a real SMTP server, aiosmtpd (for Debian's /usr/bin/python3), and make
# their TLS certificates with openssl; the PostgreSQL store's tests start a
# throwaway server of Debian's postgresql (tests/support/pg-server); the
# cache purge's tests start their own redis-server on 127.0.0.1.
[ "$MODE" = test ] && PACKAGES+=(chromium prometheus python3-aiosmtpd openssl postgresql redis-server)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing: ${missing[*]}"
  local SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The console's npm packages, exactly as pinned by its committed lockfile.
install_console_packages() {
  local web=plugins/console/web
  if [ ! -f $web/node_modules/.package-lock.json ] || [ $web/package-lock.json -nt $web/node_modules/.package-lock.json ]; then
    echo "== installing the console's npm packages (npm ci)"
    (cd $web && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The OpenAPI linter the admin API's tests run (it needs Node.js 20.19 or
# later), exactly as pinned by its committed lockfile.
install_openapi_lint_packages() {
  local lint=tests/plugins/admin-http/openapi-lint
  if [ ! -f $lint/node_modules/.package-lock.json ] || [ $lint/package-lock.json -nt $lint/node_modules/.package-lock.json ]; then
    echo "== installing the OpenAPI linter's npm packages (npm ci)"
    (cd $lint && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The webhook receiver the webhook channel's tests deliver to: it verifies
# signatures with the Standard Webhooks library, exactly as pinned by its
# committed lockfile.
install_webhook_receiver_packages() {
  local receiver=tests/support/webhook-receiver
  if [ ! -f $receiver/node_modules/.package-lock.json ] || [ $receiver/package-lock.json -nt $receiver/node_modules/.package-lock.json ]; then
    echo "== installing the webhook receiver's npm packages (npm ci)"
    (cd $receiver && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The OpenFeature server SDK and its OFREP provider, with which the feature
# flags' tests read the flags as an application would, exactly as pinned by
# their committed lockfile.
install_ofrep_client_packages() {
  local client=tests/plugins/feature-flags/ofrep-client
  if [ ! -f $client/node_modules/.package-lock.json ] || [ $client/package-lock.json -nt $client/node_modules/.package-lock.json ]; then
    echo "== installing the OFREP client's npm packages (npm ci)"
    (cd $client && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# build DIR [cmake args...]
build() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j2
}

install_missing
install_console_packages
if [ "$MODE" = test ]; then install_openapi_lint_packages; install_webhook_receiver_packages; install_ofrep_client_packages; fi
case "$MODE" in
  start)
    build build
    mkdir -p var
    echo "== starting the kernel (Ctrl-C stops it); data in $(pwd)/var"
    exec build/kernel/opskernel --config config/opskernel.conf --plugins-dir build/plugins --data-dir var run
    ;;
  test)
    # The test builds keep line tables only (-g1): enough for the sanitizers'
    # and a crash's stack traces, and a quarter less compile time than full
    # debug information. The sanitizer build does not optimize (-O0): its
    # reports stay exact, it compiles in about 60% of the -O1 time (measured
    # on a plugin's file: 8.7 against 14.8 s, most of it generating the code
    # of inlined templates with both sanitizers' checks); its tests take
    # about a third longer (198 against 148 s), much less than the build
    # saves. CI's limit is the sum of both builds on two cores.
    echo "== release build, warnings as errors"
    build build -DOPK_WERROR=ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
      -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
    # Most tests wait on servers, kernels and sockets, not on the CPU (the
    # release suite used 90 CPU-s in 115 s at -j2): four at once take 78 s.
    ctest --test-dir build -j4 --output-on-failure
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer build"
    # Without the benchmarks: they are built and run from the release build.
    build build-asan -DOPK_WERROR=ON -DOPK_SANITIZE=ON -DOPK_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1 -DNDEBUG" \
      -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O0 -g1 -DNDEBUG"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build-asan -j3 --output-on-failure
    echo "== all tests passed"
    ;;
esac
