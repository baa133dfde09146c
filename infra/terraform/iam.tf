# Each function and each workflow runs as its own service account with the project roles the
# spec lists: only roles that exist at project level alone (Workflows, Logging) or Firestore's,
# conditioned on one database. What a workflow may invoke is granted per function
# (workflows.tf), topics and secrets per resource below.
resource "google_service_account" "function" {
  for_each = local.service_accounts

  account_id   = each.key
  display_name = "Platform identity ${each.key}"

  depends_on = [google_project_service.api]
}

resource "google_project_iam_member" "function" {
  for_each = local.service_account_roles

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.function[each.value.account].email}"

  dynamic "condition" {
    for_each = contains(local.firestore_roles, each.value.role) ? [google_firestore_database.default.name] : []
    content {
      title      = "Only the ${condition.value} database"
      expression = "resource.name == \"projects/${var.project_id}/databases/${condition.value}\""
    }
  }
}

# Publishing is granted per topic, on the topics each function publishes on.
resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.topic_publishers

  topic  = google_pubsub_topic.topic[each.value.topic].name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.function[each.value.account].email}"
}

# Secret access is granted per secret, on the secrets each function mounts or reads by name.
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.secret_accessors

  secret_id = google_secret_manager_secret.secret[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.account].email}"
}

# The audit log's database: written by one identity, read by a few, by a project grant that
# holds on that database alone.
resource "google_project_iam_member" "audit_log" {
  for_each = local.audit_log_access

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.function[each.value.account].email}"

  condition {
    title      = "Only the ${google_firestore_database.audit_log.name} database"
    expression = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.audit_log.name}\""
  }
}

# The identity Pub/Sub signs push requests with. It has no project roles: it may only invoke
# the functions that receive pushes.
resource "google_service_account" "push" {
  account_id   = "pubsub-push"
  display_name = "Pub/Sub push identity"

  depends_on = [google_project_service.api]
}

# Projects created before April 2021 need the service agent to mint the push OIDC token
# explicitly; newer ones have it implicitly, and the grant is harmless there.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_sa
}
