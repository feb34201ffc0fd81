#!/usr/bin/env bash
# Runs the whole test suite, as CI does: builds every crate (the plugin
# libraries the tests load included), installs the real clients some tests
# drive (clients.sh), starts the test servers the suites need on 127.0.0.1,
# runs the tests, stops the servers.
#
# Each script in scripts/servers/ is called with `start` before the tests
# and `stop` after; it installs what it needs (pip packages …) and exports
# nothing: the tests find servers through the ports fixed in those scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

servers=(scripts/servers/*.sh)
stop_servers() {
    for s in "${servers[@]}"; do
        [ -f "$s" ] && bash "$s" stop || true
    done
    # What the build took, for when a disk fills up.
    echo "== disk: target/ $(du -sh target 2>/dev/null | cut -f1), free $(df -h --output=avail . | tail -1)"
}
trap stop_servers EXIT

bash scripts/clients.sh

for s in "${servers[@]}"; do
    [ -f "$s" ] || continue
    echo "== starting test server: $s"
    bash "$s" start
done

echo "== building the workspace (plugins included)"
cargo build --workspace
echo "== running the tests"
cargo test --workspace --no-fail-fast "$@"
