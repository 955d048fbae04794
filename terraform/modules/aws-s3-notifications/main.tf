# S3 bucket notifications wired to a knevents s3 event source.
#
#   delivery = "sns": bucket -> SNS topic -> HTTPS subscription to the event source function URL.
#   delivery = "sqs": bucket -> SQS queue, polled by the event source (its `sqs: {queue}` setting).
#
# The topic/queue policy lets only s3.amazonaws.com publish, and only for this bucket.

locals {
  name       = coalesce(var.name, "${var.bucket_name}-knevents")
  bucket_arn = "arn:${var.partition}:s3:::${var.bucket_name}"
  protocol   = var.function_url == null ? null : split(":", var.function_url)[0]
  # the path SNS posts to: the knevents source's `sns.endpoint`
  endpoint_path = var.function_url == null ? null : coalesce(try(regex("^https?://[^/]+(/[^?#]*)", var.function_url)[0], null), "/")

  source_condition = merge(
    { ArnLike = { "aws:SourceArn" = local.bucket_arn } },
    var.source_account == null ? {} : { StringEquals = { "aws:SourceAccount" = var.source_account } },
  )

  bucket_id = var.create_bucket ? aws_s3_bucket.this[0].id : var.bucket_name
}

resource "aws_s3_bucket" "this" {
  count  = var.create_bucket ? 1 : 0
  bucket = var.bucket_name
  tags   = var.tags
}

# --- SNS ----------------------------------------------------------------------

resource "aws_sns_topic" "this" {
  count = var.delivery == "sns" ? 1 : 0
  name  = local.name
  tags  = var.tags

  lifecycle {
    precondition {
      condition     = var.function_url != null
      error_message = "delivery = \"sns\" needs function_url (the event source function URL and endpoint)."
    }
    precondition {
      condition     = local.protocol == "https" || var.allow_insecure_http
      error_message = "function_url must be https:// (set allow_insecure_http = true for a test endpoint)."
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  count = var.delivery == "sns" ? 1 : 0
  arn   = aws_sns_topic.this[0].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AllowBucketToPublish"
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "SNS:Publish"
      Resource  = aws_sns_topic.this[0].arn
      Condition = local.source_condition
    }]
  })
}

resource "aws_sns_topic_subscription" "function" {
  count                  = var.delivery == "sns" ? 1 : 0
  topic_arn              = aws_sns_topic.this[0].arn
  protocol               = local.protocol
  endpoint               = var.function_url
  endpoint_auto_confirms = var.wait_for_confirmation
  # the envelope is kept: the source checks its signature and reads Message
  raw_message_delivery = false
}

# --- SQS ----------------------------------------------------------------------

resource "aws_sqs_queue" "this" {
  count                      = var.delivery == "sqs" ? 1 : 0
  name                       = local.name
  message_retention_seconds  = var.queue_retention_seconds
  visibility_timeout_seconds = var.queue_visibility_timeout_seconds
  tags                       = var.tags
}

resource "aws_sqs_queue_policy" "this" {
  count     = var.delivery == "sqs" ? 1 : 0
  queue_url = aws_sqs_queue.this[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AllowBucketToSend"
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.this[0].arn
      Condition = local.source_condition
    }]
  })
}

# --- the bucket notification ------------------------------------------------------

resource "aws_s3_bucket_notification" "this" {
  bucket = local.bucket_id

  dynamic "topic" {
    for_each = var.delivery == "sns" ? [1] : []
    content {
      topic_arn     = aws_sns_topic.this[0].arn
      events        = var.events
      filter_prefix = var.filter_prefix == "" ? null : var.filter_prefix
      filter_suffix = var.filter_suffix == "" ? null : var.filter_suffix
    }
  }

  dynamic "queue" {
    for_each = var.delivery == "sqs" ? [1] : []
    content {
      queue_arn     = aws_sqs_queue.this[0].arn
      events        = var.events
      filter_prefix = var.filter_prefix == "" ? null : var.filter_prefix
      filter_suffix = var.filter_suffix == "" ? null : var.filter_suffix
    }
  }

  # S3 checks that it may publish when the notification is set: the policies come first
  depends_on = [aws_sns_topic_policy.this, aws_sqs_queue_policy.this, aws_sns_topic_subscription.function]
}
