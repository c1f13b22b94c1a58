output "function_url" {
  description = "URL of the function (also the audience of the scheduler's OIDC token). Only the scheduler account may call it."
  value       = google_cloudfunctions2_function.sync.service_config[0].uri
}

output "runtime_service_account_email" {
  description = "Share the Google Sheet with this address as Editor: the function acts as this account."
  value       = google_service_account.runtime.email
}

output "scheduler_job_name" {
  description = "Name of the Cloud Scheduler job that runs the sync (gcloud scheduler jobs run NAME --location=REGION)."
  value       = google_cloud_scheduler_job.sync.name
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
    google_monitoring_alert_policy.function_errors[*].name,
  )
}
