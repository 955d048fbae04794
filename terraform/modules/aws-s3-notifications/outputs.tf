output "topic_arn" {
  description = "The SNS topic (delivery = \"sns\")."
  value       = one(aws_sns_topic.this[*].arn)
}

output "subscription_arn" {
  description = "The function's SNS subscription (delivery = \"sns\")."
  value       = one(aws_sns_topic_subscription.function[*].arn)
}

output "queue_url" {
  description = "The SQS queue URL (delivery = \"sqs\")."
  value       = one(aws_sqs_queue.this[*].id)
}

output "queue_arn" {
  description = "The SQS queue ARN (delivery = \"sqs\")."
  value       = one(aws_sqs_queue.this[*].arn)
}

output "policy" {
  description = "The topic or queue policy document (JSON)."
  value       = var.delivery == "sns" ? one(aws_sns_topic_policy.this[*].policy) : one(aws_sqs_queue_policy.this[*].policy)
}

output "event_source_config" {
  description = "The matching knevents `s3:` event entry settings (bucket, events, filter, and sns or sqs)."
  value = merge(
    {
      bucket = { name = var.bucket_name }
      events = var.events
    },
    { for k, v in { filter = { prefix = var.filter_prefix, suffix = var.filter_suffix } } : k => v if var.filter_prefix != "" || var.filter_suffix != "" },
    { for k, v in { sqs = { queue = local.name } } : k => v if var.delivery == "sqs" },
    { for k, v in { sns = { endpoint = local.endpoint_path } } : k => v if var.delivery == "sns" },
  )
}
