# Three service accounts, each with only what it needs. The default compute account is never
# used: it holds Editor on the whole project.

# The function runs as this account.
resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name}-run"
  display_name = "${var.name} function (runtime)"
  description  = "Runs the ${var.name} functions: reads their secrets, uses Firestore, edits the sheet shared with it."

  depends_on = [google_project_service.enabled]
}

# Firestore has no per-collection IAM: datastore.user (read and write documents), conditioned on
# the one database the function uses, is the narrowest grant that works.
resource "google_project_iam_member" "runtime_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.runtime.member

  condition {
    title       = "${var.name} database only"
    description = "Only the Firestore database ${var.firestore_database}."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
  }
}

# Secret access is granted on each of the secrets, never on the project (see secrets.tf).

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

# The roles Google documents for a custom build account (and the provider's own example grants):
# build logs and the image, here on the project; Storage Object Admin below, on the sources only.
resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",       # write build logs
    "roles/artifactregistry.writer", # push the image to the gcf-artifacts repository
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# Storage Object Admin, conditioned on the source buckets: ours, and the gcf-v2-sources-* bucket
# that Cloud Functions creates and copies the archive into, whose name (it holds the project
# number) this configuration does not own. No other bucket of the project.
resource "google_project_iam_member" "build_storage" {
  project = var.project_id
  role    = "roles/storage.objectAdmin"
  member  = google_service_account.build.member

  condition {
    title       = "${var.name} function sources only"
    description = "The function's source buckets: ${local.source_bucket} and Cloud Functions' gcf-v2-sources-*."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${local.source_bucket}\") || resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\")"
  }
}
