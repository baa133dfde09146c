# Secrets only: their values are added out of band (gcloud secrets versions add), so no
# secret material ever reaches Terraform state.
resource "google_secret_manager_secret" "secret" {
  for_each = local.secrets

  secret_id = each.key

  # One region: a single replica keeps the free tier's per-location version count.
  replication {
    user_managed {
      replicas {
        location = local.region
      }
    }
  }

  depends_on = [google_project_service.api]
}
