output "gateway_url" {
  description = "URL of the public function (the one marked `public: true` in infra/infrastructure.yaml); null when none is."
  value       = try(one([for name, f in local.public_functions : google_cloudfunctions2_function.function[name].service_config[0].uri]), null)
}

output "function_urls" {
  description = "Every function's URL, by function name."
  value       = { for name, f in google_cloudfunctions2_function.function : name => f.service_config[0].uri }
}

output "dead_letter_hold_subscriptions" {
  description = "Pull subscriptions holding each subscription's dead letters, by subscription name."
  value       = { for name, s in google_pubsub_subscription.dead_letter_hold : name => s.name }
}
