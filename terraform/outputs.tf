output "function_url" {
  description = "URL of the sync function (also the audience of the scheduler's OIDC token). Only the scheduler account may call it."
  value       = google_cloudfunctions2_function.sync.service_config[0].uri
}

output "runtime_service_account_email" {
  description = "Share the Google Sheet with this address as Editor: the function acts as this account."
  value       = google_service_account.runtime.email
}

output "scheduler_job_name" {
  description = "Name of the Cloud Scheduler job that runs the sync (gcloud scheduler jobs run NAME --location=REGION). Null with accounts: see scheduler_job_names."
  value       = one(google_cloud_scheduler_job.sync[*].name)
}

output "region" {
  description = "Region of the function and the scheduler job (the --location of gcloud commands)."
  value       = var.region
}

output "secret_ids" {
  description = "Secret Manager secret IDs to add the values to, by the environment variable they become."
  value       = { for env, secret in google_secret_manager_secret.app : env => secret.secret_id }
}

output "function_name" {
  description = "Name of the function (and of its Cloud Run service), for logs and gcloud commands."
  value       = google_cloudfunctions2_function.sync.name
}

output "watcher_alert_policies" {
  description = "The watcher's Cloud Monitoring alert policies (empty when watcher_enabled is false)."
  value = concat(
    google_monitoring_alert_policy.no_healthy_run[*].name,
    [for id in local.account_ids : google_monitoring_alert_policy.account_no_healthy_run[id].name if contains(keys(google_monitoring_alert_policy.account_no_healthy_run), id)],
    google_monitoring_alert_policy.function_errors[*].name,
  )
}

output "scheduler_job_names" {
  description = "With accounts: each account's Cloud Scheduler job, by account id (gcloud scheduler jobs run NAME --location=REGION)."
  value       = { for id, job in google_cloud_scheduler_job.account : id => job.name }
}

output "slack_actions_url" {
  description = "URL of slack_actions, the Slack app's interactivity Request URL (the one public function). Null with slack_actions_enabled = false."
  value       = one(google_cloudfunctions2_function.slack_actions[*].url)
}

# Written by the first, targeted apply too (it depends on the secrets only), so the Slack app can
# be made, and its signing secret stored, before the functions are deployed.
output "slack_app_manifest" {
  description = "slack/manifest.yaml with the Request URL of slack_actions: paste it at api.slack.com/apps, Create New App, From a manifest."
  value       = var.slack_actions_enabled ? local.slack_app_manifest : null
  depends_on  = [google_secret_manager_secret.app]
}
