# The secrets (locals.tf, secret_ids): the Moneypenny username and password (one pair per
# account with accounts), the Slack bot token and, with slack_actions, Slack's signing secret.
# Terraform creates the empty secrets and grants the runtime account access to each of them; their values are added with `gcloud secrets versions add` (docs/deploy.md) and
# are never in this code or in the Terraform state.

resource "google_secret_manager_secret" "app" {
  for_each = local.secret_ids

  project   = var.project_id
  secret_id = each.value

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

# Secret access on these secrets only, never on the project.
resource "google_secret_manager_secret_iam_member" "runtime" {
  for_each = google_secret_manager_secret.app

  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}
