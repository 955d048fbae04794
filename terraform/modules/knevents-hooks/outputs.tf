output "applied_from" {
  description = "The manifests folder whose hooks are applied."
  value       = terraform_data.hooks.input.manifests_dir
}
