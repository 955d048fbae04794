output "objects" {
  description = "Every applied object, keyed kind/namespace/name."
  value       = keys(module.manifests.all)
}

output "services" {
  description = "The Knative Services (event sources and sensors), keyed kind/namespace/name."
  value       = [for k, v in module.manifests.workloads : k if v.kind == "Service"]
}
