# slack_actions: the second function, built from the same source archive (entry point
# main.slack_actions). It takes the clicks of the Slack app's Claim buttons. Slack cannot send an
# OIDC token, so it is the one public URL of the deployment: allUsers may invoke it, and the
# function itself refuses every request that Slack's signing secret does not verify (or that
# comes from another workspace or app) before it reads anything else. It never runs a sync. It
# runs as the runtime account (the sheet is shared with that one address, and one deployment
# keeps one service account), so IAM does not fence it off from the other secrets: the signature
# check is what keeps strangers out. It mounts what the code loads an account's settings with
# (main.slack_actions loads them as the sync does), plus Slack's signing secret.
# Everything here goes with slack_actions_enabled = false.

resource "google_cloudfunctions2_function" "slack_actions" {
  #checkov:skip=CKV_GCP_124:Slack posts the Claim clicks from the internet, so this one function takes traffic from anywhere; it refuses every request whose Slack signature, workspace or app does not verify, before it reads anything else.
  count = var.slack_actions_enabled ? 1 : 0

  name        = local.slack_actions_name
  project     = var.project_id
  location    = var.region
  description = "Takes the Claim clicks of the ${var.name} Slack app (signed by Slack) and writes the owner into the sheet."

  build_config {
    runtime         = var.python_runtime
    entry_point     = "slack_actions"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.runtime.email

    # Clicks are decided one at a time in Firestore (first click wins, in a transaction), so
    # several instances are safe; the cap bounds what strangers can make the public URL cost.
    min_instance_count               = var.slack_actions_min_instances
    max_instance_count               = var.slack_actions_max_instances
    max_instance_request_concurrency = 1
    available_memory                 = var.function_memory
    available_cpu                    = "1"
    # Slack wants the answer within 3 seconds; a click never needs a minute.
    timeout_seconds = 60

    # Slack calls from the internet.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true

    environment_variables = local.slack_actions_environment

    dynamic "secret_environment_variables" {
      for_each = local.slack_actions_secret_ids
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.app[secret_environment_variables.key].secret_id
        version    = local.secret_versions[secret_environment_variables.key]
      }
    }
  }

  lifecycle {
    # Without them every click would be refused (or, worse, any workspace's accepted).
    precondition {
      condition     = var.slack_team_id != "" && var.slack_app_id != ""
      error_message = "slack_team_id and slack_app_id must be set to deploy slack_actions: the workspace ID (T...) and the app ID (A..., the app's Basic Information page) of the Slack app made from slack/manifest.yaml (docs/deploy.md, \"Set up the Slack app\"). Or set slack_actions_enabled = false."
    }
  }

  depends_on = [
    google_project_service.enabled,
    time_sleep.iam_propagation,
  ]
}

# The one public invoker in this configuration, on slack_actions' service only. (checkov's
# public-service check, CKV_GCP_102, reads the v1 resource types today; the skip keeps the reason
# with the grant, and tests/test_terraform.py shows it applies when the check sees this grant.)
resource "google_cloud_run_v2_service_iam_member" "slack_actions_public" {
  #checkov:skip=CKV_GCP_102:Slack's interactivity requests carry no Google identity (Slack cannot send an OIDC token), so this one function must be public; it verifies Slack's signature with the signing secret, and the workspace and app, before it reads anything else, and answers 401 with nothing touched otherwise.
  count = var.slack_actions_enabled ? 1 : 0

  project  = var.project_id
  location = google_cloudfunctions2_function.slack_actions[0].location
  name     = google_cloudfunctions2_function.slack_actions[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The Slack app was made (slack/manifest.yaml, through the slack_app_manifest output) before the
# function existed, with the address Google gives every 2nd gen function; say so if Google gave
# another one.
check "slack_actions_url_matches_the_manifest" {
  assert {
    condition     = !var.slack_actions_enabled || try(google_cloudfunctions2_function.slack_actions[0].url, local.slack_actions_url) == local.slack_actions_url
    error_message = "slack_actions answers at ${try(google_cloudfunctions2_function.slack_actions[0].url, "?")}, not at ${local.slack_actions_url} as the Slack app's manifest says: in api.slack.com/apps, your app, Interactivity & Shortcuts, set the Request URL to terraform output -raw slack_actions_url."
  }
}
