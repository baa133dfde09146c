# The monthly budget on the project. Its thresholds are the ratios of
# rules/budget_thresholds.yaml (alert, suspend, halt), so the notifications the billing
# service sends line up with the rows the budget guard evaluates.
resource "google_billing_budget" "monthly" {
  billing_account = var.billing_account
  display_name    = "${var.project_id} monthly cap"

  budget_filter {
    projects        = ["projects/${data.google_project.this.number}"]
    calendar_period = "MONTH"
  }

  amount {
    specified_amount {
      currency_code = "USD"
      units         = tostring(local.spec.budget.monthly_cap_usd)
    }
  }

  dynamic "threshold_rules" {
    for_each = local.budget_thresholds
    content {
      threshold_percent = threshold_rules.value
      spend_basis       = "CURRENT_SPEND"
    }
  }

  all_updates_rule {
    pubsub_topic   = google_pubsub_topic.topic[local.spec.budget.notifications_topic].id
    schema_version = "1.0"
  }

  lifecycle {
    precondition {
      condition     = local.budget_params.platform_cap_usd == local.spec.budget.monthly_cap_usd
      error_message = "rules/budget_thresholds.yaml platform_cap_usd differs from budget.monthly_cap_usd in infra/infrastructure.yaml."
    }
  }

  depends_on = [
    google_project_service.api,
    google_pubsub_topic_iam_member.budget_publisher,
  ]
}

# The billing service publishes budget notifications as this Google-owned identity.
resource "google_pubsub_topic_iam_member" "budget_publisher" {
  topic  = google_pubsub_topic.topic[local.spec.budget.notifications_topic].name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:billing-budget-alert@system.gserviceaccount.com"
}
