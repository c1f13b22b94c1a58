# Cloud Scheduler calls the function on schedule, with an OIDC token of the scheduler account.
# The token's audience is the function's URL (the Cloud Run service URI): that is what the
# function's service checks. One job per account (one in all without accounts): the daily
# reconcile is made by the first scheduled run after RECONCILE_AT (lib/sync/reconcile.py), in the
# same run and under its lease, so no second job fires in the same minute as the sync and waits
# in Cloud Run's queue.

locals {
  function_url = google_cloudfunctions2_function.sync.service_config[0].uri
}

# Without accounts: the one job, as before (with accounts, each has its own below).
resource "google_cloud_scheduler_job" "sync" {
  count = local.accounts_on ? 0 : 1

  name        = var.name
  project     = var.project_id
  region      = var.region
  description = "Sync new Moneypenny chats to the sheet and Slack."
  schedule    = var.schedule
  time_zone   = var.time_zone

  # Longer than the function may run, so a run still going is never given up on and retried.
  attempt_deadline = "${local.attempt_deadline_seconds}s"

  # Cloud Scheduler retries only until the next scheduled execution: the retries come within
  # seconds (see locals.tf), well inside the 5-minute interval, or they would never happen.
  retry_config {
    retry_count          = local.retry_count
    min_backoff_duration = "${local.retry_min_backoff_seconds}s"
    max_backoff_duration = "${local.retry_max_backoff_seconds}s"
    max_retry_duration   = "${local.retry_max_duration_seconds}s"
    # 10 s, 20 s, 40 s, then 60 s. Not 0: the provider leaves zero values out of the request,
    # so the API would keep its default (5) and every plan would show a diff.
    max_doublings = 2
  }

  http_target {
    http_method = "POST"
    uri         = local.function_url

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.function_url
    }
  }

  depends_on = [
    google_project_service.enabled,
    time_sleep.invoker_propagation,
  ]
}

# With accounts: a job per account, calling ?account=ID (the audience stays the bare URL: that is
# what Cloud Run checks), a minute after the one before (locals.tf, account_schedules), so the
# accounts do not all start at once. A paused account's job is paused: its settings, secrets and
# state stay, and `?account=ID` by hand still works.
resource "google_cloud_scheduler_job" "account" {
  for_each = var.accounts

  name        = "${var.name}-${each.key}"
  project     = var.project_id
  region      = var.region
  description = "Sync new Moneypenny chats of account ${each.key} to its sheet and Slack channel."
  schedule    = local.account_schedules[each.key]
  time_zone   = var.time_zone
  paused      = each.value.paused

  attempt_deadline = "${local.attempt_deadline_seconds}s"

  retry_config {
    retry_count          = local.retry_count
    min_backoff_duration = "${local.retry_min_backoff_seconds}s"
    max_backoff_duration = "${local.retry_max_backoff_seconds}s"
    max_retry_duration   = "${local.retry_max_duration_seconds}s"
    max_doublings        = 2
  }

  http_target {
    http_method = "POST"
    uri         = "${local.function_url}?account=${each.key}"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.function_url
    }
  }

  depends_on = [
    google_project_service.enabled,
    time_sleep.invoker_propagation,
  ]
}
