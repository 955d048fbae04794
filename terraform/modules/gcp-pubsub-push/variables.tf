variable "project" {
  description = "GCP project id."
  type        = string
}

variable "topic" {
  description = "The Pub/Sub topic (the knevents source's `topic`)."
  type        = string
}

variable "create_topic" {
  description = "Create the topic (otherwise it must exist)."
  type        = bool
  default     = true
}

variable "subscription" {
  description = "Name of the push subscription (default: <topic>-knevents)."
  type        = string
  default     = null
}

variable "function_url" {
  description = "Base https URL of the knevents event source function."
  type        = string
}

variable "endpoint" {
  description = "The event's push endpoint path (the source's `push.endpoint`)."
  type        = string
  default     = "/"
}

variable "audience" {
  description = "OIDC token audience (default: the push URL)."
  type        = string
  default     = null
}

variable "service_account_email" {
  description = "Sign push tokens as this service account; null creates one (knevents-pusher)."
  type        = string
  default     = null
}

variable "grant_token_creator" {
  description = "Let the Pub/Sub service agent mint tokens for the service account (needed in projects created before April 2021)."
  type        = bool
  default     = true
}

variable "ack_deadline_seconds" {
  description = "How long Pub/Sub waits for the function's answer; above the function's bus publish retries."
  type        = number
  default     = 30
}

variable "minimum_backoff" {
  description = "Redelivery backoff after a 5xx (the source answers 5xx when the bus refused the event)."
  type        = string
  default     = "1s"
}

variable "maximum_backoff" {
  description = "Upper bound of the redelivery backoff."
  type        = string
  default     = "60s"
}
