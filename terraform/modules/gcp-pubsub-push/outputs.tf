output "subscription" {
  description = "The push subscription id."
  value       = google_pubsub_subscription.push.id
}

output "service_account_email" {
  description = "The account push tokens are signed as."
  value       = local.email
}

output "event_source_config" {
  description = "The matching knevents `pubSub:` event entry."
  value       = module.config.event_source_config
}
