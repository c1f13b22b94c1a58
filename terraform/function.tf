# The function: its source archive in a private bucket, the 2nd gen function built from it, and
# the one IAM binding that lets the scheduler account (and nobody else) invoke it.

# Exactly the files listed in local.source_files (main.py, requirements.txt, lib/).
data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.module}/build/${var.name}-source.zip"

  dynamic "source" {
    for_each = local.source_files
    content {
      content  = file("${local.source_root}/${source.value}")
      filename = source.value
    }
  }
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:This bucket only holds the function's build archive; Cloud Audit Logs cover access to it, and a second bucket just for usage logs is not worth it.
  name     = local.source_bucket
  project  = var.project_id
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Nothing in it but build archives that Terraform can upload again.
  force_destroy = true

  versioning {
    enabled = true
  }

  # Each source change uploads a new object (its name holds the archive's hash) and Terraform
  # deletes the old one; keep the deleted ones for a month, then let them go.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "source" {
  name   = "${var.name}-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

resource "google_cloudfunctions2_function" "sync" {
  name        = var.name
  project     = var.project_id
  location    = var.region
  description = "Copies Moneypenny live chats into a Google Sheet and posts a Slack summary."

  build_config {
    runtime         = var.python_runtime
    entry_point     = "sync_chats"
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

    # One run at a time: a single instance that takes a single request.
    min_instance_count               = 0
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    available_memory                 = var.function_memory
    available_cpu                    = "1"
    timeout_seconds                  = local.function_timeout_seconds

    ingress_settings               = var.ingress_settings
    all_traffic_on_latest_revision = true

    environment_variables = local.runtime_environment

    # Read when an instance starts. A change of version (secret_versions) deploys a new revision.
    # Every secret but Slack's signing secret (slack_actions' alone).
    dynamic "secret_environment_variables" {
      for_each = local.sync_secret_ids
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.app[secret_environment_variables.key].secret_id
        version    = local.secret_versions[secret_environment_variables.key]
      }
    }
  }

  depends_on = [
    google_project_service.enabled,
    time_sleep.iam_propagation,
  ]
}

# Cloud Run's invoker role on the function's service, for the scheduler account only. Nothing
# here (or anywhere in this configuration) grants allUsers or allAuthenticatedUsers.
# The service is the one the function reports (service_config[0].service), not a name we assume.
resource "google_cloud_run_v2_service_iam_member" "scheduler_invoker" {
  project  = var.project_id
  location = google_cloudfunctions2_function.sync.location
  name     = google_cloudfunctions2_function.sync.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# New IAM grants take a while to reach every Google service. Without these waits a first apply
# on a fresh project can fail (Cloud Build refusing the build account, the function refused its
# secrets, the first scheduler call refused with 403). The provider's own 2nd gen example waits
# 60 s the same way. They wait only when the grants are first made (or replaced).
resource "time_sleep" "iam_propagation" {
  create_duration = "60s"

  triggers = {
    build   = join(",", sort([for g in google_project_iam_member.build : g.id]))
    runtime = google_project_iam_member.runtime_firestore.id
    storage = google_project_iam_member.build_storage.id
    secrets = join(",", sort([for g in google_secret_manager_secret_iam_member.runtime : g.id]))
  }
}

resource "time_sleep" "invoker_propagation" {
  create_duration = "60s"

  triggers = {
    invoker = google_cloud_run_v2_service_iam_member.scheduler_invoker.id
  }
}
