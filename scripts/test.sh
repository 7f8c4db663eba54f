#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Installs what
# the tests need, then: formatting, lints, and every test with root
# features required (a skipped kernel test is a failure here).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/setup.sh --test
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
BERTH_TEST_REQUIRE_ROOT=1 BERTH_TEST_REQUIRE_VM=1 cargo test --all-targets 2>&1
echo "== fuzz smoke run"
FUZZ_SECONDS=${FUZZ_SECONDS:-5} bash scripts/fuzz.sh
echo "== benchmarks, short mode (peers only where installed)"
bash benches/run.sh --short --out target/bench-short
