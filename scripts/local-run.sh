#!/usr/bin/env bash
# Sets everything up, then runs the real function locally against built-in stand-ins.
# With --serve: the playground, stand-ins that keep running for the command line (python -m lib);
# with --accounts N: the demo as a deployment of N accounts (each its own login, sheet and channel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --local
exec .venv/bin/python -m sandbox "$@"
