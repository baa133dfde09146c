# The spec's buckets and schedules: today the audit chain's anchors, written every 10 minutes
# by the guardian on Cloud Scheduler's call (docs/audit.md). Nothing here names them: each
# resource iterates over infrastructure.yaml.
locals {
  buckets = { for b in try(local.spec.buckets, []) : b.name => b }
  # A creator may create objects and read them back (the guardian reads the newest anchor).
  # objectCreator holds no delete, so it cannot replace an object either; nobody else is
  # granted anything on the bucket.
  bucket_grants = {
    for pair in flatten([
      for b in try(local.spec.buckets, []) : [
        for account in try(b.creators, []) : [
          for role in ["roles/storage.objectCreator", "roles/storage.objectViewer"] : { bucket = b.name, account = account, role = role }
        ]
      ]
    ]) : "${pair.bucket} ${pair.account} ${pair.role}" => pair
  }
  schedules = { for s in try(local.spec.schedules, []) : s.name => s }
}

variable "lock_bucket_retention" {
  description = "Lock each bucket's retention policy. A locked policy can never be shortened or removed, so no one, project owners included, can delete an object before it is retention_days old; a bucket holding such objects cannot be deleted either. Set false only for a throwaway deployment."
  type        = bool
  default     = true
}

resource "google_storage_bucket" "spec" {
  for_each = local.buckets

  name                        = each.key
  location                    = local.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # No object is deleted or replaced before it is this old, by anyone.
  retention_policy {
    retention_period = each.value.retention_days * 86400
    is_locked        = var.lock_bucket_retention
  }

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket_iam_member" "creator" {
  for_each = local.bucket_grants

  bucket = google_storage_bucket.spec[each.value.bucket].name
  role   = each.value.role
  member = "serviceAccount:${google_service_account.function[each.value.account].email}"
}

# Each job has an identity of its own, which may invoke its one function and nothing else.
resource "google_service_account" "schedule" {
  for_each = local.schedules

  account_id   = "sched-${each.key}"
  display_name = "Cloud Scheduler job ${each.key}"

  depends_on = [google_project_service.api]
}

resource "google_cloud_run_service_iam_member" "schedule_invoker" {
  for_each = local.schedules

  location = local.region
  service  = google_cloudfunctions2_function.function[each.value.function].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.schedule[each.key].email}"
}

# Cloud Scheduler reaches a function whose ingress is internal only: Google counts its
# requests within the project as internal. A failed run (the check could not read or anchor)
# is retried once; a break in the chain is an answered run, raised as an alert.
resource "google_cloud_scheduler_job" "schedule" {
  for_each = local.schedules

  name             = each.key
  region           = local.region
  schedule         = each.value.cron
  time_zone        = "Etc/UTC"
  attempt_deadline = "320s"

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloudfunctions2_function.function[each.value.function].service_config[0].uri}${each.value.path}"
    body        = base64encode("{}")
    headers     = { "Content-Type" = "application/json" }
    oidc_token {
      service_account_email = google_service_account.schedule[each.key].email
      audience              = google_cloudfunctions2_function.function[each.value.function].service_config[0].uri
    }
  }

  depends_on = [google_project_service.api, google_cloud_run_service_iam_member.schedule_invoker]
}
