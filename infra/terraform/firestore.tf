# The (default) database: the only one the free tier covers.
resource "google_firestore_database" "default" {
  name                    = "(default)"
  location_id             = local.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  # `terraform destroy` leaves the data in place; deleting it is a deliberate console step.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.api]
}

# The audit log's database, apart from everything else so that no grant on (default) reaches
# it (iam.tf). Outside the free tier, which covers (default) only: billed per operation.
resource "google_firestore_database" "audit_log" {
  name                    = local.audit_log.database
  location_id             = local.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.api]
}

# Webhook replay records carry expire_at; Firestore deletes them after it. The empty
# index_config drops the field's single-field indexes: nothing queries it, and a timestamp
# index would be a write hotspot.
resource "google_firestore_field" "webhook_replay_ttl" {
  database   = google_firestore_database.default.name
  collection = "webhook_replays"
  field      = "expire_at"

  ttl_config {}
  index_config {}
}
