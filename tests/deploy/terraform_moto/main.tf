# Test root: the aws-s3-notifications module applied against a local moto_server.
terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "endpoint" {
  type = string
}

variable "bucket" {
  type = string
}

variable "function_url" {
  type = string
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {
    s3  = var.endpoint
    sns = var.endpoint
    sqs = var.endpoint
    sts = var.endpoint
  }
}

module "notifications" {
  source              = "../../../terraform/modules/aws-s3-notifications"
  bucket_name         = var.bucket
  create_bucket       = true
  function_url        = var.function_url
  allow_insecure_http = true
  filter_suffix       = ".csv"
}

output "topic_arn" {
  value = module.notifications.topic_arn
}

output "event_source_config" {
  value = module.notifications.event_source_config
}
