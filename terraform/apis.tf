# The Google APIs the system needs. They stay enabled on destroy: other things in the project
# may use them too, and disabling an API can break them.

locals {
  services = toset([
    "artifactregistry.googleapis.com",     # build images of the function
    "cloudbuild.googleapis.com",           # builds the function from source
    "cloudfunctions.googleapis.com",       # the function
    "cloudresourcemanager.googleapis.com", # project IAM bindings
    "cloudscheduler.googleapis.com",       # the schedule
    "firestore.googleapis.com",            # token cache, journal, lease
    "iam.googleapis.com",                  # service accounts
    "logging.googleapis.com",              # build and run logs, the watcher's log-based metric
    "monitoring.googleapis.com",           # the watcher's alert policies and email channels
    "run.googleapis.com",                  # 2nd gen functions run on Cloud Run
    "secretmanager.googleapis.com",        # the secrets
    "sheets.googleapis.com",               # the function appends rows to the sheet
    "storage.googleapis.com",              # the source archive bucket
  ])
}

resource "google_project_service" "enabled" {
  for_each = local.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
