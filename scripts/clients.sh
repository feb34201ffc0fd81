#!/usr/bin/env bash
# Installs the real clients that some tests drive, from Debian's packages,
# when they are missing:
#   prometheus   scrapes the node's GET /metrics (host/tests/metrics_scrape.rs)
# Needs root (CI and the development machines run as root) and apt.
set -euo pipefail

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)

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
