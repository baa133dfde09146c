# Each function and each workflow runs as its own service account with the project roles the
# spec lists. What a workflow may invoke is granted per function (workflows.tf).
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
