#!/usr/bin/env bash
# Creates the two virtualenvs the tests run in and installs the runtime and test dependencies
# into each. Safe to re-run: it reinstalls only when a requirements file changed.
#
#   .venv      Python 3.11 or newer (PYTHON, default python3): the command line, ruff, mypy
#              and part of the suite (docs/development.md, "The two Pythons").
#   .venv3NN   the Python that Cloud Functions runs the function on: the version named by
#              python_runtime's default in terraform/variables.tf ("python312" -> .venv312).
#              The interpreter is PYTHON_RUNTIME if set, else python3.NN on PATH, else
#              pyenv's newest 3.NN (~/.pyenv/versions/3.NN.*).
#
#   scripts/setup.sh                       create or update both
#   scripts/setup.sh --local               .venv only (what scripts/local-run.sh needs)
#   scripts/setup.sh --print-runtime-venv  print the runtime venv's folder name only
set -euo pipefail
cd "$(dirname "$0")/.."

# The deployed runtime, read from Terraform so that the two never disagree.
runtime=$(sed -n '/^variable "python_runtime"/,/^}/s/^ *default *= *"python\([0-9]\)\([0-9]*\)".*/\1.\2/p' terraform/variables.tf)
if [ -z "$runtime" ]; then
  echo "setup: could not read python_runtime's default from terraform/variables.tf (expected default = \"python3NN\")" >&2
  exit 1
fi
venv=".venv${runtime/./}"
if [ "${1:-}" = "--print-runtime-venv" ]; then
  echo "$venv"
  exit 0
fi

# make_venv DIR PYTHON: create DIR with PYTHON unless it is there, then install the requirements.
make_venv() {
  local dir=$1 python=$2 stamp want
  if [ ! -x "$dir/bin/python" ]; then
    echo "setup: creating $dir ($("$python" --version 2>&1))" >&2
    "$python" -m venv "$dir"
  fi
  stamp=$dir/.requirements.sha256
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing dependencies into $dir" >&2
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
    echo "$want" > "$stamp"
  fi
}

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
make_venv .venv "$PYTHON"
if [ "${1:-}" = "--local" ]; then
  exit 0
fi

# is_runtime PYTHON: whether PYTHON runs and is that version (a pyenv shim may exist and fail).
is_runtime() {
  "$1" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$runtime')" 2>/dev/null
}
python_runtime=""
for candidate in ${PYTHON_RUNTIME:-} "python$runtime" $(ls -d "$HOME"/.pyenv/versions/"$runtime".*/bin/python 2>/dev/null | sort -rV); do
  if is_runtime "$candidate"; then
    python_runtime=$candidate
    break
  fi
  if [ -n "${PYTHON_RUNTIME:-}" ]; then
    echo "setup: PYTHON_RUNTIME=$PYTHON_RUNTIME is not Python $runtime (the runtime terraform/variables.tf deploys)" >&2
    exit 1
  fi
done
if [ -z "$python_runtime" ]; then
  echo "setup: Python $runtime (the runtime terraform/variables.tf deploys, python_runtime) was not found: install it (e.g. \`pyenv install $runtime\`) or set PYTHON_RUNTIME=/path/to/python$runtime" >&2
  exit 1
fi
make_venv "$venv" "$python_runtime"
