#!/usr/bin/env bash
# The code gates CI runs before the tests (.ci/run):
#   - formatting: `cargo fmt --check` (rustfmt.toml), workspace and template;
#   - lints: clippy on every crate and target, warnings are errors (the
#     lint table every crate inherits is `[workspace.lints]` in Cargo.toml);
#   - module layering: no files of a crate importing each other in a
#     circle (scripts/lint/module_cycles.py);
#   - dependencies: `cargo deny check licenses bans sources` (deny.toml).
#     cargo-deny is installed on first use into target/tools (a few minutes
#     of build, from crates.io). Its advisory check needs the RustSec
#     database, which CI cannot download: run `scripts/lint.sh advisories`
#     where the network allows.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
DENY_VERSION=0.20.2
TOOLS=target/tools

cargo_deny() {
    if command -v cargo-deny >/dev/null && cargo-deny --version | grep -q " $DENY_VERSION"; then
        cargo-deny "$@"
        return
    fi
    if [ ! -x "$TOOLS/bin/cargo-deny" ]; then
        echo "== installing cargo-deny $DENY_VERSION into $TOOLS"
        cargo install --locked --quiet --no-default-features --root "$TOOLS" "cargo-deny@$DENY_VERSION"
    fi
    "$TOOLS/bin/cargo-deny" "$@"
}

if [ "${1:-}" = advisories ]; then
    cargo_deny check advisories
    exit
fi

echo "== formatting"
cargo fmt --all --check
cargo fmt --manifest-path examples/plugin-template/Cargo.toml --check

echo "== module layering"
python3 scripts/lint/module_cycles.py plugin-api query promql host plugins/* bench

echo "== clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== dependencies (licences, bans, duplicates, sources)"
cargo_deny check licenses bans sources
