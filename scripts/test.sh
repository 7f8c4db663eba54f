#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Installs what
# the tests need, then: formatting, lints, and every test with root
# features required (a skipped kernel test is a failure here).
#   test.sh          the suite CI runs (keep it under 25 minutes)
#   test.sh --long   plus the long runs: the tests marked #[ignore] (kill -9
#                    loops), 5 minutes of fuzzing per target, the full
#                    benchmarks with every peer (network and soak included)
set -euo pipefail
long=0
[ "${1:-}" = "--long" ] && long=1
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/setup.sh --test
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true

echo "== cargo fmt --check (berth and the fuzz crate)"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "== cargo clippy (berth and the fuzz crate)"
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets --quiet -- -D warnings
echo "== cargo test"
BERTH_TEST_REQUIRE_ROOT=1 BERTH_TEST_REQUIRE_VM=1 BERTH_TEST_REQUIRE_FEATURES=1 BERTH_TEST_REQUIRE_SSH=1 cargo test --all-targets 2>&1
echo "== fuzz smoke run"
FUZZ_SECONDS=${FUZZ_SECONDS:-5} bash scripts/fuzz.sh
echo "== benchmarks, short mode (peers only where installed)"
bash benches/run.sh --short --out target/bench-short
if [ "$long" = 1 ]; then
  echo "== long tests (#[ignore]d in the normal run)"
  BERTH_TEST_REQUIRE_ROOT=1 BERTH_TEST_REQUIRE_VM=1 BERTH_TEST_REQUIRE_FEATURES=1 cargo test --all-targets -- --ignored 2>&1
  echo "== fuzzing, 5 minutes per target"
  FUZZ_SECONDS=${LONG_FUZZ_SECONDS:-300} bash scripts/fuzz.sh
  echo "== benchmarks, full mode (all peers, the CNI start bench and the 10-minute soak)"
  bash benches/run.sh --out target/bench-full
fi
