# Test root: parse a `knevents render` stream with the provider-free manifests module.
variable "yaml_file" {
  type = string
}

module "manifests" {
  source = "../../../terraform/modules/knevents/manifests"
  yaml   = file(var.yaml_file)
}

output "all" {
  value = module.manifests.all
}

output "base" {
  value = keys(module.manifests.base)
}

output "workloads" {
  value = keys(module.manifests.workloads)
}
