# Cloud Scheduler calls the function on schedule, with an OIDC token of the scheduler account.
# The token's audience is the function's URL (the Cloud Run service URI): that is what the
# function's service checks. The reconcile job adds ?mode=reconcile to its target, never to the
# audience.

locals {
  function_url = google_cloudfunctions2_function.sync.service_config[0].uri
}

resource "google_cloud_scheduler_job" "sync" {
  name        = var.name
  project     = var.project_id
  region      = var.region
  description = "Sync new Moneypenny chats to the sheet and Slack."
  schedule    = var.schedule
  time_zone   = var.time_zone

  # Longer than the function may run, so a run still going is never given up on and retried.
  attempt_deadline = "${local.attempt_deadline_seconds}s"

  # A retry waits until the failed run's lease has expired.
  retry_config {
    retry_count          = local.retry_count
    min_backoff_duration = "${local.retry_min_backoff_seconds}s"
    max_backoff_duration = "${local.retry_max_backoff_seconds}s"
    # Not 0: the provider leaves zero values out of the request, so the API keeps its default
    # (5) and every plan shows a diff. With min = max back-off, doubling changes nothing anyway.
    max_doublings = 5
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

resource "google_cloud_scheduler_job" "reconcile" {
  count = var.reconcile_enabled ? 1 : 0

  name        = "${var.name}-reconcile"
  project     = var.project_id
  region      = var.region
  description = "Re-read the last ${var.reconcile_days} days of Moneypenny chats and add any that were missed."
  schedule    = var.reconcile_schedule
  time_zone   = var.time_zone

  attempt_deadline = "${local.attempt_deadline_seconds}s"

  retry_config {
    retry_count          = local.retry_count
    min_backoff_duration = "${local.retry_min_backoff_seconds}s"
    max_backoff_duration = "${local.retry_max_backoff_seconds}s"
    # Not 0: the provider leaves zero values out of the request, so the API keeps its default
    # (5) and every plan shows a diff. With min = max back-off, doubling changes nothing anyway.
    max_doublings = 5
  }

  http_target {
    http_method = "POST"
    uri         = "${local.function_url}?mode=reconcile"

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
