# Provider-free: the push endpoint, OIDC audience and the matching knevents EventSource settings.

terraform {
  required_version = ">= 1.7"
}

variable "function_url" {
  description = "Base URL of the knevents event source function (https)."
  type        = string

  validation {
    condition     = can(regex("^https://[^/]+/?$", var.function_url))
    error_message = "function_url must be an https:// base URL without a path (Pub/Sub push needs https)."
  }
}

variable "endpoint" {
  description = "The event's push endpoint path (the source's `push.endpoint`)."
  type        = string
  default     = "/"

  validation {
    condition     = startswith(var.endpoint, "/")
    error_message = "endpoint must start with /."
  }
}

variable "audience" {
  description = "OIDC token audience (default: the push URL)."
  type        = string
  default     = null
}

variable "service_account_email" {
  description = "The service account Pub/Sub signs push tokens as."
  type        = string
}

variable "topic" {
  description = "The topic name (the source's `topic`)."
  type        = string
}

locals {
  push_endpoint = "${trimsuffix(var.function_url, "/")}${var.endpoint}"
  audience      = coalesce(var.audience, local.push_endpoint)
}

output "push_endpoint" {
  value = local.push_endpoint
}

output "audience" {
  value = local.audience
}

output "event_source_config" {
  description = "The matching knevents `pubSub:` event entry: push with token checks."
  value = {
    topic = var.topic
    push = {
      endpoint = var.endpoint
      audience = local.audience
      email    = var.service_account_email
    }
  }
}
