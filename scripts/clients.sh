#!/usr/bin/env bash
# Installs the real clients that some tests drive, from Debian's packages,
# when they are missing:
#   prometheus   scrapes the node's GET /metrics (host/tests/metrics_scrape.rs)
#                and remote-writes to it; promtool checks the example config
#                (host/tests/remote_write.rs); promtool also backfills the
#                data that host/tests/promql.rs compares answers on
#   victoria-metrics
#                vmagent, a second remote-write sender (host/tests/remote_write.rs)
#   chromium, chromium-driver
#                a person's browser on the web console (host/tests/console.rs)
# Needs root (CI and the development machines run as root) and apt.
# Also, from the npm registry with the machine's Node.js and npm, the
# versions pinned in host/tests/otel/package-lock.json:
#   OpenTelemetry's JavaScript metrics SDK and OTLP/HTTP exporters, the
#                senders of host/tests/otlp.rs
set -euo pipefail
cd "$(dirname "$0")/.."

otel=host/tests/otel
if [ ! -d "$otel/node_modules/@opentelemetry/sdk-metrics" ]; then
    if ! command -v npm >/dev/null; then
        echo "clients.sh: install Node.js and npm to run host/tests/otlp.rs" >&2
        exit 1
    fi
    echo "== installing test clients: OpenTelemetry's JavaScript SDK (npm ci in $otel)"
    (cd "$otel" && npm ci --no-audit --no-fund --silent)
fi

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v vmagent >/dev/null || missing+=(victoria-metrics)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "clients.sh: install ${missing[*]} (Debian packages) to run every test" >&2
    exit 1
fi
echo "== installing test clients: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
