#!/usr/bin/env bash
# Adds the three secret values the function reads, as new versions of the Secret Manager secrets
# Terraform created. Each value is typed at a prompt that does not show it, never lands in the
# shell history, and is sent without a trailing newline.
#
#   bash scripts/add-secrets.sh [NAME]     NAME: terraform's `name` (default moneypenny-sync)
#
# Needs gcloud signed in, with the project set (gcloud config set project ...).
set -euo pipefail

name="${1:-moneypenny-sync}"
prompts=(
    "moneypenny-username:Moneypenny username (the billing account's email)"
    "moneypenny-password:Moneypenny password"
    "slack-bot-token:Slack bot token (xoxb-...)"
)

for entry in "${prompts[@]}"; do
    secret="$name-${entry%%:*}"
    label="${entry#*:}"
    value=""
    while [[ -z "$value" ]]; do
        printf '%s for %s: ' "$label" "$secret" >&2
        IFS= read -rs value || { echo >&2; echo "add-secrets: no input; nothing more added" >&2; exit 1; }
        echo >&2
    done
    printf %s "$value" | gcloud secrets versions add "$secret" --data-file=-
done
unset value
