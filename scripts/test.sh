#!/usr/bin/env bash
# Sets everything up and runs the whole test suite. The tests start (and stop) every local
# server they use: the stand-ins in threads, the Firestore emulator as a child process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f scripts/install-tf-tools.sh ]; then
  bash scripts/install-tf-tools.sh
fi
exec .venv/bin/python -m pytest "$@"
