#!/usr/bin/env bash
# Runs every test: lint, unit tests, and the end-to-end tests on the local lab. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh

echo "== lint"
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }

lab_down() { node dist/tests/lab/cli.js down || echo "lab down reported leftovers" >&2; }
lab_down >/dev/null 2>&1 || true # a killed run can leave pieces
trap lab_down EXIT

echo "== tests"
npx mocha --reporter dist/tests/support/reporter.js --timeout 120000 \
  'dist/tests/unit/**/*.test.js' 'dist/tests/e2e/**/*.test.js' "$@"
