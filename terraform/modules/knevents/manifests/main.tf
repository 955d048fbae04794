# Provider-free: parse `knevents render` output into Kubernetes objects keyed for for_each.
#
# Input is the YAML stream (`knevents render ... > knevents.yaml`) and/or the directory written by
# `knevents render -o DIR` (every *.yaml but kustomization.yaml). Objects are split into two
# groups applied in order: `base` (ConfigMaps, RBAC, Brokers) before `workloads` (Knative
# Services, PingSources, Triggers), so a Service never starts without its spec ConfigMap.

terraform {
  required_version = ">= 1.7"
}

variable "yaml" {
  description = "A multi-document YAML stream from `knevents render`."
  type        = string
  default     = ""
}

variable "directory" {
  description = "A directory written by `knevents render -o DIR`."
  type        = string
  default     = null
}

locals {
  base_kinds = ["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Broker"]

  files = var.directory == null ? [] : [
    for f in sort(fileset(var.directory, "*.yaml")) : file("${var.directory}/${f}") if f != "kustomization.yaml"
  ]

  # documents start with a line "---" (knevents writes explicit starts); block scalars are indented, never split;
  # the newline the split takes is given back, or a trailing literal block would lose its last newline
  documents = flatten([
    for text in concat([var.yaml], local.files) : [
      for doc in split("\n---\n", "\n${replace(text, "\r\n", "\n")}\n") : yamldecode("${doc}\n") if trimspace(doc) != ""
    ]
  ])
  objects = [for o in local.documents : o if o != null]

  keyed = {
    for o in local.objects :
    "${try(o.kind, "?")}/${try(o.metadata.namespace, "")}/${try(o.metadata.name, "?")}" => o...
  }
}

output "all" {
  description = "Every object, keyed kind/namespace/name."
  value       = { for k, v in local.keyed : k => v[0] }

  precondition {
    condition     = alltrue([for o in local.objects : can(o.apiVersion) && can(o.kind) && can(o.metadata.name)])
    error_message = "Every document needs apiVersion, kind and metadata.name: is this `knevents render` output?"
  }
  precondition {
    condition     = alltrue([for k, v in local.keyed : length(v) == 1])
    error_message = "The same kind/namespace/name appears twice: ${join(", ", [for k, v in local.keyed : k if length(v) > 1])}."
  }
}

output "base" {
  description = "ConfigMaps, RBAC and Brokers: applied first."
  value       = { for k, v in local.keyed : k => v[0] if contains(local.base_kinds, try(v[0].kind, "")) }
}

output "workloads" {
  description = "Knative Services, PingSources and Triggers: applied after the base."
  value       = { for k, v in local.keyed : k => v[0] if !contains(local.base_kinds, try(v[0].kind, "")) }
}
