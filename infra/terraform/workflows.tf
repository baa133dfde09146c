# One Cloud Workflows definition per spec entry; `source` is relative to the repository root.
# Each runs as the service account the spec names (infraspec refuses a workflow without one:
# the Compute default identity may invoke everything), logs its calls at the spec's level, and
# finds the functions it calls in user environment variables holding their URLs.
resource "google_workflows_workflow" "workflow" {
  for_each = local.workflows

  name            = each.key
  region          = local.region
  source_contents = file("${path.module}/../../${each.value.source}")
  service_account = google_service_account.function[each.value.service_account].email
  call_log_level  = each.value.call_log_level
  user_env_vars = {
    for env, fn in try(each.value.function_urls, {}) : env => google_cloudfunctions2_function.function[fn].service_config[0].uri
  }

  depends_on = [
    google_project_service.api,
    google_cloud_run_service_iam_member.workflow_invoker,
  ]
}

# A workflow's identity may invoke exactly the functions whose URLs it is given: run.invoker
# on each of those functions' Cloud Run services, and no project-wide grant.
resource "google_cloud_run_service_iam_member" "workflow_invoker" {
  for_each = local.workflow_invokers

  location = local.region
  service  = google_cloudfunctions2_function.function[each.value.function].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.function[each.value.account].email}"
}
