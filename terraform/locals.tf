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

  # Environment variable => Secret Manager secret ID. Values are added with gcloud, never here.
  secret_ids = {
    MONEYPENNY_USERNAME = "${var.name}-moneypenny-username"
    MONEYPENNY_PASSWORD = "${var.name}-moneypenny-password"
    SLACK_BOT_TOKEN     = "${var.name}-slack-bot-token"
  }
  secret_versions = {
    MONEYPENNY_USERNAME = var.secret_versions.moneypenny_username
    MONEYPENNY_PASSWORD = var.secret_versions.moneypenny_password
    SLACK_BOT_TOKEN     = var.secret_versions.slack_bot_token
  }

  # Every other setting lib/settings.py reads, each given a value.
  runtime_environment = {
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
    SLACK_ALERT_CHANNEL         = coalesce(var.slack_alert_channel, var.slack_channel)
    SLACK_API_URL               = "https://slack.com/api/"
    SLACK_MAX_LISTED            = tostring(var.slack_max_listed)
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
