# Values computed from the variables alone. This file must not refer to any resource or data
# source: tests/test_terraform.py evaluates it offline (with variables.tf and the example tfvars)
# to check the function's environment against lib/settings.py and the timing rules below.

locals {
  source_root   = abspath(coalesce(var.source_dir, "${path.module}/.."))
  source_bucket = coalesce(var.source_bucket_name, "${var.project_id}-${var.name}-source")

  # Exactly what the function needs, and nothing else (no tests, no terraform, no venvs):
  # main.py, requirements.txt and every file under lib/ except Python caches.
  source_files = sort(concat(
    ["main.py", "requirements.txt"],
    [
      for f in fileset(local.source_root, "lib/**") : f
      if length(regexall("(^|/)__pycache__(/|$)|\\.py[co]$", f)) == 0
    ],
  ))

  firestore_location    = coalesce(var.firestore_location, var.region)
  journal_collection    = "${var.firestore_collection_prefix}_journal"
  journal_ttl_field     = "expires_at"
  quarantine_collection = "${var.firestore_collection_prefix}_quarantine"
  quarantine_ttl_field  = "expires_at"
  batches_collection    = "${var.firestore_collection_prefix}_batches"
  batches_ttl_field     = "expires_at"
  # The large text field of each (lib/state/firestore/journal.py, lib/state/firestore/batches.py),
  # never queried.
  journal_large_field    = "chat_json"
  quarantine_large_field = "raw"
  batches_large_field    = "keys_json"

  # Accounts (var.accounts): each id's suffix in its variables' names (east-london ->
  # EAST_LONDON, as the function reads them), in the order of the ids.
  account_ids    = sort(keys(var.accounts))
  accounts_on    = length(local.account_ids) > 0
  account_suffix = { for id in local.account_ids : id => upper(replace(id, "-", "_")) }

  # Environment variable => Secret Manager secret ID. Values are added with gcloud, never here.
  # Without accounts: the one Moneypenny login. With accounts: a login per account (a login is
  # never shared between accounts, so there is no deployment-wide one).
  moneypenny_secret_ids = local.accounts_on ? merge([
    for id in local.account_ids : {
      "MONEYPENNY_USERNAME__${local.account_suffix[id]}" = "${var.name}-${id}-moneypenny-username"
      "MONEYPENNY_PASSWORD__${local.account_suffix[id]}" = "${var.name}-${id}-moneypenny-password"
    }
    ]...) : {
    MONEYPENNY_USERNAME = "${var.name}-moneypenny-username"
    MONEYPENNY_PASSWORD = "${var.name}-moneypenny-password"
  }
  # Read by slack_actions only: the sync never sees it.
  slack_signing_secret_ids = var.slack_actions_enabled ? { SLACK_SIGNING_SECRET = "${var.name}-slack-signing-secret" } : {}
  secret_ids = merge(
    local.moneypenny_secret_ids,
    { SLACK_BOT_TOKEN = "${var.name}-slack-bot-token" },
    local.slack_signing_secret_ids,
  )
  # What each function mounts (environment variable => key of secret_ids).
  sync_secret_ids = { for env, id in local.secret_ids : env => id if env != "SLACK_SIGNING_SECRET" }
  # The public function never reads Moneypenny (lib/actions.py stands a placeholder in for the
  # login): it mounts no Moneypenny secret, so a flaw in it cannot reach one through its environment.
  slack_actions_secret_ids = { for env, id in local.secret_ids : env => id if !startswith(env, "MONEYPENNY_") }
  secret_versions = merge(
    local.accounts_on ? merge([
      for id in local.account_ids : {
        "MONEYPENNY_USERNAME__${local.account_suffix[id]}" = try(var.secret_versions.accounts[id].moneypenny_username, "latest")
        "MONEYPENNY_PASSWORD__${local.account_suffix[id]}" = try(var.secret_versions.accounts[id].moneypenny_password, "latest")
      }
      ]...) : {
      MONEYPENNY_USERNAME = var.secret_versions.moneypenny_username
      MONEYPENNY_PASSWORD = var.secret_versions.moneypenny_password
    },
    { SLACK_BOT_TOKEN = var.secret_versions.slack_bot_token },
    var.slack_actions_enabled ? { SLACK_SIGNING_SECRET = var.secret_versions.slack_signing_secret } : {},
  )

  # Each account's own settings, NAME__ID, for the fields its entry gives (the rest take the
  # deployment-wide NAME). Alerts go to the account's own channel when it names one and no alert
  # channel is given, as SLACK_ALERT_CHANNEL defaults to SLACK_CHANNEL.
  account_settings = {
    for id in local.account_ids : id => {
      for name, value in {
        MONEYPENNY_SOURCES    = var.accounts[id].moneypenny_sources
        CHAT_TIMEZONE         = var.accounts[id].chat_timezone
        SHEET_ID              = var.accounts[id].sheet_id
        SHEET_TAB             = var.accounts[id].sheet_tab
        CALLS_TAB             = var.accounts[id].calls_tab
        SLACK_CHANNEL         = var.accounts[id].slack_channel
        SLACK_ALERT_CHANNEL   = var.accounts[id].slack_alert_channel != null ? var.accounts[id].slack_alert_channel : (var.slack_alert_channel == "" ? var.accounts[id].slack_channel : null)
        SLACK_MAX_LISTED      = var.accounts[id].slack_max_listed == null ? null : tostring(var.accounts[id].slack_max_listed)
        UNCLAIMED_REMINDER_AT = var.accounts[id].unclaimed_reminder_at
      } : name => value if value != null
    }
  }
  account_environment = merge(
    local.accounts_on ? { ACCOUNTS = join(",", local.account_ids) } : {},
    [for id in local.account_ids : { for name, value in local.account_settings[id] : "${name}__${local.account_suffix[id]}" => value }]...
  )

  # Every other setting lib/settings.py reads, each given a value (a deployment-wide one left
  # null, when every account names its own, is left out; so is an unset reminder: it is off).
  # Without slack_actions nothing takes a Claim button's click (Slack would show the clicker an
  # error): SLACK_CLAIM_BUTTONS=off; with it, the default (on) and the environment as before.
  runtime_environment = merge({
    for name, value in {
      MONEYPENNY_AUTH_URL         = var.moneypenny_auth_url
      MONEYPENNY_CHATS_URL        = var.moneypenny_chats_url
      MONEYPENNY_CALLS_URL        = var.moneypenny_calls_url
      MONEYPENNY_SOURCES          = var.moneypenny_sources
      CHAT_TIMEZONE               = var.chat_timezone
      SHEET_ID                    = var.sheet_id
      SHEET_TAB                   = var.sheet_tab
      CALLS_TAB                   = var.calls_tab
      SHEETS_API_URL              = "https://sheets.googleapis.com"
      SLACK_CHANNEL               = var.slack_channel
      SLACK_ALERT_CHANNEL         = var.slack_alert_channel != "" ? var.slack_alert_channel : var.slack_channel
      SLACK_API_URL               = "https://slack.com/api/"
      SLACK_MAX_LISTED            = tostring(var.slack_max_listed)
      UNCLAIMED_REMINDER_AT       = var.unclaimed_reminder_at
      SLACK_CLAIM_BUTTONS         = var.slack_actions_enabled ? null : "off"
      STATE_STORE                 = "firestore"
      GOOGLE_CLOUD_PROJECT        = var.project_id
      FIRESTORE_DATABASE          = var.firestore_database
      FIRESTORE_COLLECTION_PREFIX = var.firestore_collection_prefix
      HTTP_TIMEOUT_SECONDS        = tostring(var.http_timeout_seconds)
      LEASE_SECONDS               = tostring(var.lease_seconds)
      RETENTION_DAYS              = tostring(var.retention_days)
      RECONCILE_DAYS              = tostring(var.reconcile_days)
      RECONCILE_AT                = var.reconcile_at
      ALERT_REPEAT_MINUTES        = tostring(var.alert_repeat_minutes)
      LOG_FORMAT                  = "json"
    } : name => value if value != null
  }, local.account_environment)

  # slack_actions: the same settings (it finds the clicked item's account, sheet and channel),
  # plus the workspace and app whose payloads it takes. Its URL is known before it exists
  # (https://REGION-PROJECT.cloudfunctions.net/NAME), so the Slack app can be created, and its
  # signing secret stored, before the function is deployed; slack.tf checks the URL it gets.
  slack_actions_name = "${var.name}-slack"
  slack_actions_environment = merge(local.runtime_environment, {
    SLACK_TEAM_ID = var.slack_team_id
    SLACK_APP_ID  = var.slack_app_id
  })
  slack_actions_url   = "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.slack_actions_name}"
  slack_manifest_url  = "https://YOUR-SLACK-ACTIONS-URL"
  slack_manifest_file = "${local.repository_root}/slack/manifest.yaml"
  slack_app_manifest  = replace(file(local.slack_manifest_file), local.slack_manifest_url, local.slack_actions_url)
  repository_root     = abspath("${path.module}/..")
  # Parsed here, so that a manifest Slack could not read fails the plan, not the paste.
  slack_app_manifest_fields = yamldecode(local.slack_app_manifest)

  # The schedule of each account's job: the deployment's schedule moved on by a minute per
  # account (in the order of the ids), so the accounts do not all start in the same minute. A
  # step (*/5, 0-59/15) starts k minutes later (k = position modulo the step); a list of
  # minutes (0, 0,30) moves by the position; every minute (*) or a plain range stays as it is.
  # An account's own schedule is taken as given.
  schedule_fields = split(" ", var.schedule)
  schedule_minute = local.schedule_fields[0]
  schedule_rest   = join(" ", slice(local.schedule_fields, 1, length(local.schedule_fields)))
  # [start, end, step] of a stepped minute field (* is 0-59), else null.
  schedule_step = can(regex("^(\\*|[0-9]+-[0-9]+)/[0-9]+$", local.schedule_minute)) ? [
    for n in concat(
      local.schedule_minute == "*" || startswith(local.schedule_minute, "*/") ? ["0", "59"] : split("-", split("/", local.schedule_minute)[0]),
      [split("/", local.schedule_minute)[1]],
    ) : tonumber(n)
  ] : null
  schedule_list = can(regex("^[0-9]+(,[0-9]+)*$", local.schedule_minute)) ? [for n in split(",", local.schedule_minute) : tonumber(n)] : null
  account_minute = {
    for i, id in local.account_ids : id => (
      local.schedule_step != null ? (
        i % local.schedule_step[2] == 0 || local.schedule_step[0] + i % local.schedule_step[2] > 59 ? local.schedule_minute :
        "${local.schedule_step[0] + i % local.schedule_step[2]}-${min(local.schedule_step[1] + i % local.schedule_step[2], 59)}/${local.schedule_step[2]}"
      ) : local.schedule_list != null ? join(",", [for m in local.schedule_list : tostring((m + i) % 60)]) : local.schedule_minute
    )
  }
  account_schedules = {
    for id in local.account_ids : id => coalesce(var.accounts[id].schedule, "${local.account_minute[id]} ${local.schedule_rest}")
  }

  # Timing. The scheduler waits a minute longer than the function may run (so it never gives up
  # on a run that is still going). Cloud Scheduler retries a failed call only "until the next
  # scheduled execution", so a retry must come well inside the 5-minute interval: 10 s after the
  # failure, then 20 s, 40 s, at most 60 s apart, and none begun more than
  # retry_max_duration_seconds + retry_max_backoff_seconds after the first attempt (whichever
  # way the API combines retry_count with max_retry_duration). A run that failed (503) gave its
  # lease back in its last write, so the retry runs; one that timed out (504) may still be
  # running and holding it, and the retry then answers 200 "skipped" and the next tick runs.
  function_timeout_seconds   = var.function_timeout_seconds
  attempt_deadline_seconds   = var.function_timeout_seconds + 60
  retry_min_backoff_seconds  = 10
  retry_max_backoff_seconds  = 60
  retry_max_duration_seconds = 120
  retry_count                = var.scheduler_retry_count

  # The watcher. The function logs one `run ok` or `run failed` line per run (lib/sync/run.py,
  # Syncer._finish) as JSON on stderr; Cloud Run hands it to Cloud Logging as jsonPayload
  # on the function's own Cloud Run service. tests/test_terraform.py matches this filter against
  # a line the function really writes.
  watcher_count      = var.watcher_enabled ? 1 : 0
  run_metric         = "${var.name}/runs"
  healthy_run_metric = "${var.name}/healthy_runs"
  # trimspace: a heredoc ends in a newline, which the API drops, and the plan would show a diff.
  run_log_filter = trimspace(<<-EOT
    resource.type="cloud_run_revision"
    resource.labels.service_name="${var.name}"
    jsonPayload.message=("run ok" OR "run failed")
  EOT
  )
  # The healthy runs alone, by the filter itself: the absence alert needs no label spelling (how
  # Logging writes an extracted JSON boolean into a STRING label is undocumented).
  healthy_run_log_filter = trimspace(<<-EOT
    resource.type="cloud_run_revision"
    resource.labels.service_name="${var.name}"
    jsonPayload.message="run ok"
    jsonPayload.healthy=true
  EOT
  )
  run_metric_labels = {
    outcome = "EXTRACT(jsonPayload.outcome)"
    healthy = "EXTRACT(jsonPayload.healthy)"
  }
  # With accounts, each run line names its account (jsonPayload.account, lib/logs.py): the
  # healthy runs are counted by account, and each account has its own absence alert (which
  # account stopped), in place of the deployment-wide one. A paused account's alert is off.
  account_watch_count        = var.watcher_enabled && local.accounts_on ? 1 : 0
  deployment_watch_count     = var.watcher_enabled && !local.accounts_on ? 1 : 0
  account_healthy_run_metric = "${var.name}/account_healthy_runs"
  account_metric_labels = {
    account = "EXTRACT(jsonPayload.account)"
  }
  watch_seconds = var.watch_minutes * 60
  # An absence incident closes by itself after this long without data: during an outage "no
  # data" is the outage, so days, not minutes (7 days, the longest Cloud Monitoring takes).
  # A healthy run closes it as soon as it is logged.
  absence_auto_close_seconds = 7 * 24 * 3600
  # How long Cloud Monitoring takes to know a new log-based metric: an alert policy created
  # sooner fails with "Cannot find metric(s)" (hashicorp/terraform-provider-google#11102).
  metric_propagation_seconds = 120
  # Alert policies carry this label so that `python -m lib status` and `check` can find the
  # ones that watch the state store they read (label values: lowercase, at most 63 characters).
  watcher_label = substr(lower(var.firestore_collection_prefix), 0, 63)
}
