#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for FUZZ_SECONDS each (default 10: the
# smoke run CI does). cargo-fuzz is installed from crates.io when missing;
# the targets build on stable Rust without a sanitizer (-s none). A crash
# leaves its input in fuzz/artifacts/TARGET/ and fails the run; once the
# bug is fixed, move the input to fuzz/regressions/TARGET/ (the test suite
# replays it, and every fuzz run starts from it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --quiet --locked cargo-fuzz
seconds=${FUZZ_SECONDS:-10}
cd "$here/fuzz"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in $(cargo fuzz list); do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "corpus/$target"
  # Seeds and saved regressions (both committed, both replayed by
  # tests/fuzz_replay.rs) start the corpus; new inputs go to corpus/ only.
  seeds=()
  for d in "seeds/$target" "regressions/$target"; do
    [ -d "$d" ] && seeds+=("$d")
  done
  if ! cargo fuzz run "$target" -s none "corpus/$target" "${seeds[@]}" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
    grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" >&2 || tail -20 "$log" >&2
    echo "fuzz target $target failed" >&2
    exit 1
  fi
  grep -E "^Done" "$log" || true
done
