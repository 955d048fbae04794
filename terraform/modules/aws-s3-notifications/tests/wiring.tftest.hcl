# Offline plan/apply checks of the wiring with a mocked AWS provider (no AWS, no network).

mock_provider "aws" {
  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:us-east-1:123456789012:uploads-knevents"
    }
  }
  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:us-east-1:123456789012:uploads-knevents"
      id  = "https://sqs.us-east-1.amazonaws.com/123456789012/uploads-knevents"
    }
  }
}

run "sns_push_to_the_function" {
  command = apply

  variables {
    bucket_name    = "uploads"
    function_url   = "https://s3-events.default.example.com/csv-uploaded"
    filter_suffix  = ".csv"
    source_account = "123456789012"
  }

  assert {
    condition     = aws_sns_topic.this[0].name == "uploads-knevents"
    error_message = "topic name defaults to <bucket>-knevents"
  }
  assert {
    condition     = aws_sns_topic_subscription.function[0].protocol == "https" && aws_sns_topic_subscription.function[0].endpoint == "https://s3-events.default.example.com/csv-uploaded"
    error_message = "the function URL is subscribed over https"
  }
  assert {
    condition     = jsondecode(aws_sns_topic_policy.this[0].policy).Statement[0].Principal.Service == "s3.amazonaws.com"
    error_message = "only S3 may publish"
  }
  assert {
    condition     = jsondecode(aws_sns_topic_policy.this[0].policy).Statement[0].Condition.ArnLike["aws:SourceArn"] == "arn:aws:s3:::uploads"
    error_message = "only this bucket may publish"
  }
  assert {
    condition     = jsondecode(aws_sns_topic_policy.this[0].policy).Statement[0].Condition.StringEquals["aws:SourceAccount"] == "123456789012"
    error_message = "the source account is checked when given"
  }
  assert {
    condition     = aws_s3_bucket_notification.this.topic[0].filter_suffix == ".csv" && length(aws_s3_bucket_notification.this.queue) == 0
    error_message = "the bucket notifies the topic with the filter"
  }
  assert {
    condition     = length(aws_sqs_queue.this) == 0 && length(aws_s3_bucket.this) == 0
    error_message = "no queue and no bucket in sns mode by default"
  }
  assert {
    condition     = output.event_source_config.sns.endpoint == "/csv-uploaded" && output.event_source_config.filter.suffix == ".csv"
    error_message = "the matching EventSource settings are given"
  }
}

run "sqs_queue_for_polling" {
  command = apply

  variables {
    bucket_name   = "uploads"
    delivery      = "sqs"
    create_bucket = true
  }

  assert {
    condition     = jsondecode(aws_sqs_queue_policy.this[0].policy).Statement[0].Action == "sqs:SendMessage"
    error_message = "S3 may send to the queue"
  }
  assert {
    condition     = !can(jsondecode(aws_sqs_queue_policy.this[0].policy).Statement[0].Condition.StringEquals)
    error_message = "no account condition unless asked"
  }
  assert {
    condition     = aws_s3_bucket_notification.this.queue[0].queue_arn == "arn:aws:sqs:us-east-1:123456789012:uploads-knevents"
    error_message = "the bucket notifies the queue"
  }
  assert {
    condition     = length(aws_sns_topic.this) == 0 && length(aws_s3_bucket.this) == 1
    error_message = "no topic in sqs mode; the bucket is created when asked"
  }
  assert {
    condition     = output.event_source_config.sqs.queue == "uploads-knevents" && !can(output.event_source_config.filter)
    error_message = "the matching EventSource settings are given"
  }
}

run "plain_http_is_refused" {
  command = plan

  variables {
    bucket_name  = "uploads"
    function_url = "http://s3-events.default.example.com/csv-uploaded"
  }

  expect_failures = [aws_sns_topic.this]
}

run "unknown_delivery_is_refused" {
  command = plan

  variables {
    bucket_name = "uploads"
    delivery    = "lambda"
  }

  expect_failures = [var.delivery]
}
