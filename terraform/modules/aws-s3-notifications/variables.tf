variable "bucket_name" {
  description = "The S3 bucket whose notifications go to knevents."
  type        = string
}

variable "create_bucket" {
  description = "Create the bucket too (otherwise it must exist)."
  type        = bool
  default     = false
}

variable "delivery" {
  description = "How notifications reach the knevents s3 event source: \"sns\" (pushed to the function URL; scales to zero) or \"sqs\" (a queue the source polls; keeps one replica)."
  type        = string
  default     = "sns"

  validation {
    condition     = contains(["sns", "sqs"], var.delivery)
    error_message = "delivery must be \"sns\" or \"sqs\"."
  }
}

variable "function_url" {
  description = "With delivery = \"sns\": the URL SNS posts to, i.e. the event source function's URL plus the event's endpoint (default endpoint: /<event name>)."
  type        = string
  default     = null

  validation {
    condition     = var.function_url == null || can(regex("^https?://[^/]+", var.function_url))
    error_message = "function_url must be an absolute http(s) URL."
  }
}

variable "allow_insecure_http" {
  description = "Allow an http:// function_url. SNS then posts notifications in clear text; only for test endpoints."
  type        = bool
  default     = false
}

variable "wait_for_confirmation" {
  description = "Wait until the function confirmed the SNS subscription (the knevents sns/s3 source confirms it by itself), so a wrong URL fails the apply."
  type        = bool
  default     = true
}

variable "events" {
  description = "S3 event types to notify."
  type        = list(string)
  default     = ["s3:ObjectCreated:*"]

  validation {
    condition     = length(var.events) > 0 && alltrue([for e in var.events : can(regex("^s3:", e))])
    error_message = "events must be a non-empty list of S3 event types such as s3:ObjectCreated:*."
  }
}

variable "filter_prefix" {
  description = "Only notify for keys with this prefix (empty: all)."
  type        = string
  default     = ""
}

variable "filter_suffix" {
  description = "Only notify for keys with this suffix (empty: all)."
  type        = string
  default     = ""
}

variable "name" {
  description = "Name of the SNS topic or SQS queue (default: <bucket>-knevents)."
  type        = string
  default     = null
}

variable "source_account" {
  description = "If set, the topic/queue policy also requires aws:SourceAccount (the bucket owner's account id)."
  type        = string
  default     = null
}

variable "partition" {
  description = "AWS partition of the bucket ARN (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "queue_retention_seconds" {
  description = "With delivery = \"sqs\": how long an unread notification is kept (default 4 days, SQS' default)."
  type        = number
  default     = 345600
}

variable "queue_visibility_timeout_seconds" {
  description = "With delivery = \"sqs\": how long a received message stays hidden; longer than the source's publish retries."
  type        = number
  default     = 60
}

variable "tags" {
  description = "Tags for the topic or queue."
  type        = map(string)
  default     = {}
}
