# Provider webhooks (GitHub, GitLab, Bitbucket, Bitbucket Server, Gerrit, Stripe) of the EventSources in
# manifests_dir, created with `knevents hooks apply` when this resource is created (or when the manifests, the
# URL or the command change) and removed with `knevents hooks delete` when it is destroyed.
#
# Runs where Terraform runs: `knevents` must be installed there, and the providers' credentials readable as
# knevents reads them (KNEVENTS_SECRET_<NAME>_<KEY> in `environment`, or mounted secret files). No provider
# plugin is needed (terraform_data is built in).

locals {
  files  = fileset(var.manifests_dir, "**/*.{yaml,yml}")
  digest = sha256(join("", [for f in sort(local.files) : filesha256("${var.manifests_dir}/${f}")]))
  url    = var.public_url == null ? "" : "--url ${var.public_url}"
}

resource "terraform_data" "hooks" {
  input = {
    command       = var.knevents_command
    manifests_dir = var.manifests_dir
    url           = local.url
  }
  triggers_replace = [local.digest, var.public_url, var.knevents_command]

  provisioner "local-exec" {
    command     = "${self.input.command} hooks apply ${self.input.manifests_dir} ${self.input.url}"
    environment = var.environment
  }

  provisioner "local-exec" {
    when    = destroy
    command = "${self.input.command} hooks delete ${self.input.manifests_dir} ${self.input.url}"
  }
}
