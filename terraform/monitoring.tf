# The watcher: Cloud Monitoring watches the function from outside, so that a person hears when
# it does not run at all (a broken deploy, a secret without a version, the scheduler job paused
# or deleted, its invoker role removed, the Slack token revoked so the function's own alerts
# cannot post). Email channels need no OAuth; add other channels by ID in
# alert_notification_channels. Everything here goes with watcher_enabled = false.

locals {
  watcher_channels = concat(
    [for c in google_monitoring_notification_channel.email : c.id],
    var.alert_notification_channels,
  )
  watcher_labels = { app = var.name, watcher_for = local.watcher_label }

  # Steps 3 and 4 below: the one job and login, or (with accounts) each account's.
  watcher_job_and_secret_checks = local.accounts_on ? trimspace(<<-EOT
    3. Each account's scheduler job is there and ENABLED (`python -m lib status` names the account at fault):
       `gcloud scheduler jobs list --location=${var.region} --filter="name~${var.name}-" --format="table(name,state,status)"`
       (a paused account: `paused` in its accounts entry; the next apply sets what terraform.tfvars says).
    4. Each secret has an enabled version:
       `gcloud secrets versions list ${var.name}-ID-moneypenny-password` for each account ID (and
       `-moneypenny-username`), and `${var.name}-slack-bot-token`.
  EOT
    ) : trimspace(<<-EOT
    3. The scheduler job is there and ENABLED:
       `gcloud scheduler jobs describe ${var.name} --location=${var.region} --format="value(state,status)"`
       (resume a paused job with `gcloud scheduler jobs resume ${var.name} --location=${var.region}`).
    4. Each secret has an enabled version:
       `gcloud secrets versions list ${var.name}-moneypenny-password` (and `-moneypenny-username`,
       `-slack-bot-token`).
  EOT
  )

  # What to check first, in the order that finds most causes soonest. Shown in the alert.
  watcher_first_checks = <<-EOT
    1. `python -m lib check` with the function's settings (docs/operating.md, "The command line"): the line
       that is not OK names the problem (Moneypenny login, sheet sharing or header, Slack token).
    2. `python -m lib status`: its first line says when the last successful run was and why
       runs fail or what is waiting.
    ${local.watcher_job_and_secret_checks}
    5. The function's log: `gcloud functions logs read ${var.name} --region=${var.region} --gen2 --limit=50`.

    Nothing is lost while runs fail: chats wait in the journal (or at Moneypenny) and go out with
    the next good run. This alert closes by itself when runs succeed again.
  EOT
}

resource "google_monitoring_notification_channel" "email" {
  for_each = var.watcher_enabled ? toset(var.alert_emails) : toset([])

  project      = var.project_id
  display_name = "${var.name} watcher: ${each.value}"
  type         = "email"
  labels       = { email_address = each.value }
  user_labels  = local.watcher_labels

  depends_on = [google_project_service.enabled]
}

# One point per run the function logs, labelled with the run's outcome and its healthy flag.
resource "google_logging_metric" "runs" {
  count = local.watcher_count

  project          = var.project_id
  name             = local.run_metric
  description      = "Runs of the ${var.name} function, by outcome (ok, failed) and healthy flag, from its `run ok` / `run failed` log lines."
  filter           = local.run_log_filter
  label_extractors = local.run_metric_labels

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.name} runs"

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "ok or failed"
    }
    labels {
      key         = "healthy"
      value_type  = "STRING"
      description = "true when nothing is stuck: no chat undelivered past the alert grace, nothing quarantined, a valid Moneypenny token"
    }
  }

  depends_on = [google_project_service.enabled]
}

# One point per healthy successful run: its filter itself says healthy=true, so the absence
# alert below counts exactly these lines, whatever label spelling Logging would give the flag.
resource "google_logging_metric" "healthy_runs" {
  count = local.watcher_count

  project     = var.project_id
  name        = local.healthy_run_metric
  description = "Healthy successful runs of the ${var.name} function: its `run ok` lines with healthy=true (nothing stuck)."
  filter      = local.healthy_run_log_filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.name} healthy runs"
  }

  depends_on = [google_project_service.enabled]
}

# Cloud Monitoring learns of a new log-based metric a little after Logging creates it; a policy
# on it created sooner fails the first apply with "Cannot find metric(s) that match type"
# (hashicorp/terraform-provider-google#11102). The policies wait for this, which waits only when
# a metric is first made (or made again).
resource "time_sleep" "metric_propagation" {
  count = local.watcher_count

  create_duration = "${local.metric_propagation_seconds}s"

  triggers = {
    runs     = google_logging_metric.runs[0].id
    healthy  = google_logging_metric.healthy_runs[0].id
    accounts = try(google_logging_metric.account_healthy_runs[0].id, "")
  }
}

# Fires when no healthy successful run has been logged for watch_minutes: whatever stops the
# function (or keeps its runs from delivering), this hears it. It needs one healthy run first
# (Cloud Monitoring does not alert on a metric that never had data), and an apply that changes
# this policy re-arms it only at the next healthy run (docs/operating.md, "The watcher").
resource "google_monitoring_alert_policy" "no_healthy_run" {
  count = local.deployment_watch_count

  project               = var.project_id
  display_name          = "${var.name}: no healthy run for ${var.watch_minutes} min"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.watcher_channels
  user_labels           = local.watcher_labels

  depends_on = [time_sleep.metric_propagation]

  conditions {
    display_name = "no `run ok` line with healthy=true for ${var.watch_minutes} min"

    condition_absent {
      filter   = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.healthy_runs[0].name}\" AND resource.type=\"cloud_run_revision\""
      duration = "${local.watch_seconds}s"

      # One series for the whole function: a new revision starts new series, which must not
      # look like the old one going quiet.
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  # Days, not minutes: "no data for this long" is the outage itself, and a short auto_close
  # would close the incident while it lasts (and open it again: mail churn).
  alert_strategy {
    auto_close           = "${local.absence_auto_close_seconds}s"
    notification_prompts = ["OPENED", "CLOSED"]
  }

  documentation {
    subject   = "${var.name}: no healthy run for ${var.watch_minutes} minutes; chats are not reaching the sheet"
    mime_type = "text/markdown"
    content   = <<-EOT
      No run of **${var.name}** has succeeded with everything delivered for ${var.watch_minutes} minutes.
      Either the function does not run at all (deploy, secrets, scheduler, invoker role), or its runs
      fail, or they succeed while something is stuck (chats undelivered for over 10 minutes, an item
      in quarantine, no valid Moneypenny token).

      ${local.watcher_first_checks}
    EOT
  }
}

# With accounts: the healthy successful runs counted by account (each run line names its
# account), so that each account's absence alert below watches that account alone.
resource "google_logging_metric" "account_healthy_runs" {
  count = local.account_watch_count

  project          = var.project_id
  name             = local.account_healthy_run_metric
  description      = "Healthy successful runs of the ${var.name} function by account: its `run ok` lines with healthy=true, labelled with their account."
  filter           = local.healthy_run_log_filter
  label_extractors = local.account_metric_labels

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.name} healthy runs by account"

    labels {
      key         = "account"
      value_type  = "STRING"
      description = "the account id (ACCOUNTS) the run was for"
    }
  }

  depends_on = [google_project_service.enabled]
}

# With accounts: one absence alert per account, in place of the deployment-wide one, so the
# alert says which account stopped (the others may be fine). Off while the account is paused.
# Like the deployment-wide one it needs the account's first healthy run before it can fire.
resource "google_monitoring_alert_policy" "account_no_healthy_run" {
  for_each = var.watcher_enabled ? var.accounts : {}

  project               = var.project_id
  display_name          = "${var.name} ${each.key}: no healthy run for ${var.watch_minutes} min"
  combiner              = "OR"
  severity              = "CRITICAL"
  enabled               = !each.value.paused
  notification_channels = local.watcher_channels
  user_labels           = merge(local.watcher_labels, { account = each.key })

  depends_on = [time_sleep.metric_propagation]

  conditions {
    display_name = "no `run ok` line of account ${each.key} with healthy=true for ${var.watch_minutes} min"

    condition_absent {
      filter   = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.account_healthy_runs[0].name}\" AND resource.type=\"cloud_run_revision\" AND metric.label.account=\"${each.key}\""
      duration = "${local.watch_seconds}s"

      # One series for the account, across revisions.
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close           = "${local.absence_auto_close_seconds}s"
    notification_prompts = ["OPENED", "CLOSED"]
  }

  documentation {
    subject   = "${var.name}: account ${each.key} has had no healthy run for ${var.watch_minutes} minutes; its chats are not reaching its sheet"
    mime_type = "text/markdown"
    content   = <<-EOT
      No run of **${var.name}** for account **${each.key}** has succeeded with everything delivered for
      ${var.watch_minutes} minutes. The other accounts have alerts of their own: this one is about
      ${each.key} alone (its Moneypenny login, its sheet, its channel, its scheduler job).

      1. `python -m lib check --account ${each.key}` with the function's settings: the line that is not OK names the problem.
      2. `python -m lib status --account ${each.key}`: when its last successful run was and why runs fail.
      3. Its scheduler job is there and ENABLED:
         `gcloud scheduler jobs describe ${var.name}-${each.key} --location=${var.region} --format="value(state,status)"`
         (paused by hand? set or remove `paused` in its accounts entry and apply, as docs/deploy.md says).
      4. Its secrets have an enabled version:
         `gcloud secrets versions list ${var.name}-${each.key}-moneypenny-password` (and `-moneypenny-username`).
      5. The function's log for it: `gcloud logging read 'resource.labels.service_name="${var.name}" AND jsonPayload.account="${each.key}"' --limit=50`.

      Nothing is lost while runs fail: chats wait in the journal (or at Moneypenny) and go out with
      the next good run. This alert closes by itself when the account's runs succeed again.
    EOT
  }
}

# Fires when Cloud Run answers more than two 5xx (errors the function reported, crashes, timeouts)
# within 15 minutes: a failed run and its one retry stay quiet, a streak does not.
resource "google_monitoring_alert_policy" "function_errors" {
  count = local.watcher_count

  project               = var.project_id
  display_name          = "${var.name}: function errors"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.watcher_channels
  user_labels           = local.watcher_labels

  conditions {
    display_name = "more than 2 answers 5xx (error, crash or timeout) in 15 min"

    condition_threshold {
      filter                  = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND resource.label.service_name=\"${google_cloudfunctions2_function.sync.name}\" AND metric.label.response_code_class=\"5xx\""
      comparison              = "COMPARISON_GT"
      threshold_value         = 2
      duration                = "0s"
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"

      aggregations {
        alignment_period     = "900s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close           = "1800s"
    notification_prompts = ["OPENED", "CLOSED"]
  }

  documentation {
    subject   = "${var.name}: the function keeps failing (5xx, crashes or timeouts)"
    mime_type = "text/markdown"
    content   = <<-EOT
      The **${var.name}** function answered 5xx more than twice in 15 minutes: its runs fail
      (it names the cause in its answer and log), it crashed, or it timed out. A 503 is a failure
      that usually passes (Moneypenny, Google or Slack down) and is retried; a 500 needs a person.
      If Slack still works, the function has posted its own alert with the fix.

      ${local.watcher_first_checks}
    EOT
  }
}
