# Firestore keeps the token cache, the chat journal (with its in-flight batches), the quarantine and
# the run lease.

resource "google_firestore_database" "main" {
  count = var.create_firestore_database ? 1 : 0

  project     = var.project_id
  name        = var.firestore_database
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"

  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.firestore_deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # With protection on, `terraform destroy` forgets the database and leaves it (and its data).
  deletion_policy = var.firestore_deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.enabled]
}

# Delivered journal entries carry an expires_at timestamp; this TTL policy deletes them some
# time (up to about a day) after it passes. Nothing queries the TTL fields or the large text
# fields, so they are exempt from Firestore's automatic single-field indexes (`index_config {}`,
# as Google's TTL sample does): an index on a timestamp every write moves, or on a transcript, only
# costs write time and storage.
resource "google_firestore_field" "journal_ttl" {
  project    = var.project_id
  database   = var.firestore_database
  collection = local.journal_collection
  field      = local.journal_ttl_field

  ttl_config {}
  index_config {}

  depends_on = [google_firestore_database.main, google_project_service.enabled]
}

# Quarantined (unreadable) items hold a visitor's raw data; they carry expires_at too
# (RETENTION_DAYS after they were fetched) and this policy deletes them like the journal's.
resource "google_firestore_field" "quarantine_ttl" {
  project    = var.project_id
  database   = var.firestore_database
  collection = local.quarantine_collection
  field      = local.quarantine_ttl_field

  ttl_config {}
  index_config {}

  depends_on = [google_firestore_database.main, google_project_service.enabled]
}

# An in-flight batch (the keys of one append to the sheet) is deleted once its rows are done;
# one a crash left behind carries expires_at (RETENTION_DAYS after its append) and this policy
# deletes it, so none lingers.
resource "google_firestore_field" "batches_ttl" {
  project    = var.project_id
  database   = var.firestore_database
  collection = local.batches_collection
  field      = local.batches_ttl_field

  ttl_config {}
  index_config {}

  depends_on = [google_firestore_database.main, google_project_service.enabled]
}

# The large text fields: a chat as JSON in the journal, an unreadable item's raw text in the
# quarantine, the keys of an in-flight batch. Read by document id, never queried.
resource "google_firestore_field" "journal_chat_unindexed" {
  project    = var.project_id
  database   = var.firestore_database
  collection = local.journal_collection
  field      = local.journal_large_field

  index_config {}

  depends_on = [google_firestore_database.main, google_project_service.enabled]
}

resource "google_firestore_field" "quarantine_raw_unindexed" {
  project    = var.project_id
  database   = var.firestore_database
  collection = local.quarantine_collection
  field      = local.quarantine_large_field

  index_config {}

  depends_on = [google_firestore_database.main, google_project_service.enabled]
}

resource "google_firestore_field" "batches_keys_unindexed" {
  project    = var.project_id
  database   = var.firestore_database
  collection = local.batches_collection
  field      = local.batches_large_field

  index_config {}

  depends_on = [google_firestore_database.main, google_project_service.enabled]
}
