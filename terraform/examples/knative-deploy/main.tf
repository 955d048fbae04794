# Deploy knevents functions rendered from Argo manifests:
#
#   knevents render ../../../examples/quickstart -o rendered --image registry.example.com/knevents:0.1.0
#   terraform init && terraform apply
#
# Knative Serving and Eventing must already be installed (kubernetes_manifest reads CRDs at plan time).

terraform {
  required_version = ">= 1.7"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.23"
    }
  }
}

variable "kubeconfig" {
  type    = string
  default = "~/.kube/config"
}

provider "kubernetes" {
  config_path = pathexpand(var.kubeconfig)
}

module "knevents" {
  source         = "../../modules/knevents"
  manifests_dir  = "${path.module}/rendered"
  wait_for_ready = true
}

output "services" {
  value = module.knevents.services
}
