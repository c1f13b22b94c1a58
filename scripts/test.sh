#!/usr/bin/env bash
# Sets everything up, runs ruff and mypy, then the whole test suite. The tests start (and stop) every local
# server they use: the stand-ins in threads, the Firestore emulator as a child process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f scripts/install-tf-tools.sh ]; then
  bash scripts/install-tf-tools.sh
fi
# Lint and types first: quick, and a finding fails the run (rules in pyproject.toml).
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
