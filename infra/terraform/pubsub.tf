# Topics, their Avro schemas, and per subscription: a dead-letter topic, a hold subscription
# that keeps dead letters readable, and the push subscription to the function.

resource "google_pubsub_schema" "schema" {
  for_each = local.schemas

  name       = each.key
  type       = "AVRO"
  definition = file("${path.module}/../../${each.value[0]}")

  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "topic" {
  for_each = local.topics

  name = each.key

  dynamic "schema_settings" {
    for_each = try(each.value.attach_schema, true) ? [local.schema_id[each.key]] : []
    content {
      schema   = google_pubsub_schema.schema[schema_settings.value].id
      encoding = "JSON"
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = local.subscriptions

  name                       = "${each.key}-dlq"
  message_retention_duration = local.dead.retention

  depends_on = [google_project_service.api]
}

# A topic without subscriptions keeps nothing: dead letters land here and wait to be read.
resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each = local.subscriptions

  name                       = "${google_pubsub_topic.dead_letter[each.key].name}-hold"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  ack_deadline_seconds       = 60
  message_retention_duration = local.hold_retention

  # Subscriptions expire after 31 idle days by default; an idle platform must keep them.
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "subscription" {
  for_each = local.subscriptions

  name                    = each.key
  topic                   = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds    = each.value.ack_deadline_seconds
  enable_message_ordering = try(each.value.message_ordering, false)

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = local.dead.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = local.dead.minimum_backoff
    maximum_backoff = local.dead.maximum_backoff
  }

  expiration_policy {
    ttl = ""
  }

  # Push to the function's own URL, at the path functions-framework-go turns into a
  # CloudEvent (the same path the local stack pushes to), with an OIDC token of the push
  # identity; the function's Cloud Run service accepts only that identity.
  dynamic "push_config" {
    for_each = contains(keys(local.push_subscriptions), each.key) ? [google_cloudfunctions2_function.function[local.push_subscriptions[each.key].push_function].service_config[0].uri] : []
    content {
      push_endpoint = "${push_config.value}/projects/${var.project_id}/topics/${each.value.topic}"
      oidc_token {
        service_account_email = google_service_account.push.email
        audience              = push_config.value
      }
    }
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_cloud_run_service_iam_member.push_invoker,
  ]
}

# The Pub/Sub service agent moves a message to the dead-letter topic: it must publish there
# and subscribe on the source subscription (to acknowledge the forwarded message).
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.subscriptions

  topic  = google_pubsub_topic.dead_letter[each.key].name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_sa
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.subscriptions

  subscription = google_pubsub_subscription.subscription[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_sa
}
