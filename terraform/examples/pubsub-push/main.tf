# A Pub/Sub topic pushed to a knevents pubSub event source with an OIDC token.

terraform {
  required_version = ">= 1.7"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

variable "project" {
  type = string
}

variable "function_url" {
  description = "The pubSub event source's URL (Knative Service URL), https."
  type        = string
}

provider "google" {
  project = var.project
}

module "orders" {
  source       = "../../modules/gcp-pubsub-push"
  project      = var.project
  topic        = "orders"
  function_url = var.function_url
  endpoint     = "/orders"
}

output "event_source" {
  description = "Paste under `pubSub: {<event name>: ...}` of the EventSource."
  value       = module.orders.event_source_config
}
