# Function sources: `make package` writes <dist>/<function>.zip; the object name carries the
# zip's MD5, so a new build is a new object and the function is rebuilt from it (the old
# object is removed with it, the bucket holds only what is deployed).
resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-function-sources"
  location                    = local.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions

  bucket = google_storage_bucket.source.name
  name   = "${each.key}-${filemd5("${local.dist_dir}/${each.key}.zip")}.zip"
  source = "${local.dist_dir}/${each.key}.zip"
}

# Every function is an HTTP function. One with a Pub/Sub trigger in the spec receives its
# topic through the push subscription in pubsub.tf, which carries the dead-letter policy
# (see docs/deploy.md), rather than through an Eventarc trigger.
resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  name     = each.key
  location = local.region

  build_config {
    runtime     = local.spec.runtime
    entry_point = each.value.entry_point
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory = each.value.memory
    # Cloud Run serves more than one request at a time only with a whole vCPU; CPU is
    # allocated only while a request runs, so this costs nothing idle.
    available_cpu                    = each.value.concurrency > 1 ? "1" : null
    max_instance_request_concurrency = each.value.concurrency
    max_instance_count               = each.value.max_instances
    min_instance_count               = 0
    service_account_email            = google_service_account.function[each.value.service_account].email
    # Private functions answer only requests from inside the project: the workflow's calls and
    # Pub/Sub's pushes are such requests (docs/deploy.md); the public one answers anyone.
    ingress_settings               = contains(keys(local.public_functions), each.key) ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true

    # Cloud Functions does not set the project variable on current runtimes.
    # The functions that open the audit log are told its database.
    environment_variables = merge({ GOOGLE_CLOUD_PROJECT = var.project_id }, try(local.audit_log_env[each.key], {}), try(each.value.env, {}))

    dynamic "secret_environment_variables" {
      for_each = try(each.value.secrets, [])
      content {
        key        = secret_environment_variables.value.name
        project_id = var.project_id
        secret     = google_secret_manager_secret.secret[secret_environment_variables.value.secret].secret_id
        version    = "latest"
      }
    }
  }

  lifecycle {
    precondition {
      condition = each.value.trigger.type != "pubsub" || try(
        local.push_subscriptions[each.value.trigger.subscription].push_function == each.key, false
      )
      error_message = "A function with a Pub/Sub trigger needs trigger.subscription to be a subscription of the spec that pushes to it."
    }
  }

  # A mounted secret must be readable by the function's identity when it deploys.
  depends_on = [
    google_project_service.api,
    google_project_iam_member.function,
    google_project_iam_member.audit_log,
    google_pubsub_topic_iam_member.publisher,
    google_secret_manager_secret_iam_member.accessor,
  ]
}

# Gen 2 functions are Cloud Run services: invocation is Cloud Run's run.invoker.
resource "google_cloud_run_service_iam_member" "push_invoker" {
  for_each = local.push_targets

  location = local.region
  service  = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

resource "google_cloud_run_service_iam_member" "public_invoker" {
  for_each = local.public_functions

  location = local.region
  service  = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
