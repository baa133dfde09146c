# One Cloud Workflows definition per spec entry; `source` is relative to the repository root.
# A workflow with no `service_account` in the spec runs as the Compute default identity.
resource "google_workflows_workflow" "workflow" {
  for_each = local.workflows

  name            = each.key
  region          = local.region
  source_contents = file("${path.module}/../../${each.value.source}")
  service_account = try(google_service_account.function[each.value.service_account].email, null)
  call_log_level  = "LOG_ERRORS_ONLY"

  depends_on = [google_project_service.api]
}
