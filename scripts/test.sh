#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test in the workspace.
# Installs what the tests need when it is missing (today: only the Rust
# toolchain's rustfmt and clippy components, which rustup provides).
set -euo pipefail
cd "$(dirname "$0")/.."

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
