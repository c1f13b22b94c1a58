# Three service accounts, each with only what it needs. The default compute account is never
# used: it holds Editor on the whole project.

# The function runs as this account.
resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name}-run"
  display_name = "${var.name} function (runtime)"
  description  = "Runs the ${var.name} function: reads its three secrets, uses Firestore, edits the sheet shared with it."

  depends_on = [google_project_service.enabled]
}

# Firestore has no per-collection IAM: datastore.user (read and write documents) on the project
# is the narrowest role that works.
resource "google_project_iam_member" "runtime_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.runtime.member
}

# Secret access is granted on each of the three secrets, never on the project (see secrets.tf).

# Cloud Scheduler calls the function with an OIDC token of this account.
resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name}-sched"
  display_name = "${var.name} scheduler (invoker)"
  description  = "Used by Cloud Scheduler to call the ${var.name} function; may invoke that function only."

  depends_on = [google_project_service.enabled]
}

# Cloud Build builds the function's image as this account (new projects would otherwise use
# the default compute account).
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name}-build"
  display_name = "${var.name} function (build)"
  description  = "Builds the ${var.name} function's image from its source archive."

  depends_on = [google_project_service.enabled]
}

# The roles Google documents for a custom build account. The build reads the source from the
# gcf-v2-sources-* bucket that Cloud Functions itself creates and copies the archive into, so
# objectViewer cannot be narrowed to a bucket this configuration owns.
resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",       # write build logs
    "roles/artifactregistry.writer", # push the image to the gcf-artifacts repository
    "roles/storage.objectViewer",    # read the function source
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}
