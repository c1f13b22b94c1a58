#!/usr/bin/env bash
# Adds the secret values the functions read, as new versions of the Secret Manager secrets
# Terraform created. Each value is typed at a prompt that does not show it, never lands in the
# shell history, and is sent without a trailing newline.
#
#   bash scripts/add-secrets.sh [NAME]                   a deployment without accounts: the Moneypenny
#                                                        username and password, the Slack bot token and
#                                                        the Slack signing secret
#   bash scripts/add-secrets.sh [NAME] --account ID ...  with accounts: each named account's Moneypenny
#                                                        username and password (--account once per account)
#   bash scripts/add-secrets.sh [NAME] --slack           the Slack bot token and signing secret alone
#                                                        (with accounts, or to replace them)
#
# NAME: terraform's `name` (default moneypenny-sync). --slack and --account go together.
# The signing secret may be left empty (Enter) when slack_actions_enabled = false.
# Needs gcloud signed in, with the project set (gcloud config set project ...).
set -euo pipefail

usage() { echo "usage: $0 [NAME] [--slack] [--account ID]..." >&2; exit 2; }

name="moneypenny-sync"
slack=0
accounts=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --slack) slack=1 ;;
        --account)
            [[ $# -ge 2 && "$2" =~ ^[a-z0-9-]{1,30}$ ]] || {
                echo "add-secrets: --account needs an account id (1 to 30 lower-case letters, digits or hyphens), as in terraform.tfvars' accounts" >&2
                exit 2
            }
            accounts+=("$2")
            shift ;;
        -*) usage ;;
        *) name="$1" ;;
    esac
    shift
done

slack_prompts=(
    "slack-bot-token:Slack bot token (xoxb-...)"
    "slack-signing-secret?:Slack signing secret (the app's Basic Information page; Enter to skip without slack_actions)"
)
prompts=()
if [[ ${#accounts[@]} -eq 0 && $slack -eq 0 ]]; then
    prompts=(
        "moneypenny-username:Moneypenny username (the billing account's email)"
        "moneypenny-password:Moneypenny password"
        "${slack_prompts[@]}"
    )
else
    [[ $slack -eq 1 ]] && prompts+=("${slack_prompts[@]}")
    for account in "${accounts[@]}"; do
        prompts+=(
            "$account-moneypenny-username:Moneypenny username of account $account (its billing account's email)"
            "$account-moneypenny-password:Moneypenny password of account $account"
        )
    done
fi

for entry in "${prompts[@]}"; do
    key="${entry%%:*}"
    optional=0
    [[ "$key" == *"?" ]] && { optional=1; key="${key%\?}"; }
    secret="$name-$key"
    label="${entry#*:}"
    value=""
    while [[ -z "$value" ]]; do
        printf '%s for %s: ' "$label" "$secret" >&2
        IFS= read -rs value || { echo >&2; echo "add-secrets: no input; nothing more added" >&2; exit 1; }
        echo >&2
        [[ -z "$value" && $optional -eq 1 ]] && break
    done
    if [[ -z "$value" ]]; then
        echo "add-secrets: $secret skipped" >&2
        continue
    fi
    printf %s "$value" | gcloud secrets versions add "$secret" --data-file=-
done
unset value
