#!/usr/bin/env bash
# The README's demo: deploys examples/quickstart to the local lab and cleans up. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec node dist/examples/demo.js
