#!/usr/bin/env bash
# Sets everything up, runs ruff and mypy, then the tests: the whole suite on the Python that
# Cloud Functions runs the function on (python_runtime in terraform/variables.tf: .venv312), and
# the suite less its interpreter-independent slow parts on Python 3.11 (.venv), where the command
# line also runs. The tests start (and stop) every local server they use: the stand-ins in
# threads, the Firestore emulator as a child process.
#
#   scripts/test.sh                 both runs (what CI does)
#   scripts/test.sh PYTEST_ARGS...  those pytest arguments, on both Pythons
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f scripts/install-tf-tools.sh ]; then
  bash scripts/install-tf-tools.sh
fi
runtime_venv=$(bash scripts/setup.sh --print-runtime-venv)

# Lint, types and layers first: quick, and a finding fails the run (rules in pyproject.toml,
# which targets the deployed Python). mypy checks for 3.11 too, where the command line runs.
# lint-imports checks the layer rule between lib/'s packages ([tool.importlinter]).
"$runtime_venv"/bin/ruff check .
"$runtime_venv"/bin/mypy
.venv/bin/mypy --python-version 3.11
"$runtime_venv"/bin/lint-imports

if [ "$#" -gt 0 ]; then
  echo "== pytest on $("$runtime_venv"/bin/python --version) (the deployed runtime)" >&2
  "$runtime_venv"/bin/python -m pytest "$@"
  echo "== pytest on $(.venv/bin/python --version)" >&2
  exec .venv/bin/python -m pytest "$@"
fi

echo "== the whole suite on $("$runtime_venv"/bin/python --version) (the deployed runtime)" >&2
"$runtime_venv"/bin/python -m pytest
# The parts left out here do not depend on the interpreter (Terraform and checkov run as their
# own programs), or repeat on 3.11 what the run above proved at full size (the fault suite
# runs a tenth of its schedules here).
echo "== the suite on $(.venv/bin/python --version), less Terraform and the benchmark, with 30 fault schedules" >&2
exec .venv/bin/python -m pytest --fault-schedules 30 \
  --ignore=tests/test_terraform.py --ignore=tests/test_terraform_schema.py \
  --ignore=tests/test_benchmark_smoke.py
