#!/usr/bin/env bash
# Installs everything the tests need, then runs the whole suite (CI runs exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -r requirements-test.txt -c constraints.txt
python3 -m ruff check .
python3 -m pytest "$@"
