# Bucket notifications to knevents s3 event sources, both ways:
#   uploads -> SNS -> the event source function URL (scales to zero)
#   archive -> SQS, polled by the event source (one replica)

terraform {
  required_version = ">= 1.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "function_url" {
  description = "The s3 event source's URL (Knative Service URL) plus the event endpoint, e.g. https://s3-events.default.example.com/csv-uploaded"
  type        = string
}

provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}

module "uploads" {
  source         = "../../modules/aws-s3-notifications"
  bucket_name    = "example-uploads"
  create_bucket  = true
  function_url   = var.function_url
  filter_suffix  = ".csv"
  source_account = data.aws_caller_identity.current.account_id
}

module "archive" {
  source         = "../../modules/aws-s3-notifications"
  bucket_name    = "example-archive"
  create_bucket  = true
  delivery       = "sqs"
  source_account = data.aws_caller_identity.current.account_id
}

output "uploads_event_source" {
  description = "Paste under `s3: {<event name>: ...}` of the EventSource."
  value       = module.uploads.event_source_config
}

output "archive_event_source" {
  value = module.archive.event_source_config
}
