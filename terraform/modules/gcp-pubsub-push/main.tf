# A Pub/Sub push subscription delivering to a knevents pubSub event source (its `push:` setting),
# with an OIDC token the source verifies (audience and service account email).
#
# The URL/audience logic is in ./config (no provider; covered by `terraform test`).

locals {
  email = coalesce(var.service_account_email, try(google_service_account.pusher[0].email, null))
}

module "config" {
  source                = "./config"
  function_url          = var.function_url
  endpoint              = var.endpoint
  audience              = var.audience
  topic                 = var.topic
  service_account_email = local.email
}

data "google_project" "this" {
  project_id = var.project
}

resource "google_pubsub_topic" "this" {
  count   = var.create_topic ? 1 : 0
  project = var.project
  name    = var.topic
}

resource "google_service_account" "pusher" {
  count        = var.service_account_email == null ? 1 : 0
  project      = var.project
  account_id   = "knevents-pusher"
  display_name = "Pub/Sub push to knevents"
}

resource "google_service_account_iam_member" "token_creator" {
  count              = var.grant_token_creator ? 1 : 0
  service_account_id = "projects/${var.project}/serviceAccounts/${local.email}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription" "push" {
  project              = var.project
  name                 = coalesce(var.subscription, "${var.topic}-knevents")
  topic                = var.create_topic ? google_pubsub_topic.this[0].id : "projects/${var.project}/topics/${var.topic}"
  ack_deadline_seconds = var.ack_deadline_seconds

  push_config {
    push_endpoint = module.config.push_endpoint

    oidc_token {
      service_account_email = local.email
      audience              = module.config.audience
    }
  }

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = var.maximum_backoff
  }

  depends_on = [google_service_account_iam_member.token_creator]
}
