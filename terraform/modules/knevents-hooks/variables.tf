variable "manifests_dir" {
  description = "Folder of Argo EventSource manifests (the one given to `knevents render`)."
  type        = string
}

variable "public_url" {
  description = "Public base URL of the event source function (its Knative route); null = each entry's webhook.url."
  type        = string
  default     = null
}

variable "knevents_command" {
  description = "How to run knevents where Terraform runs (e.g. `knevents`, `python -m knevents`)."
  type        = string
  default     = "knevents"
}

variable "environment" {
  description = "Extra environment for `hooks apply`, e.g. KNEVENTS_SECRET_GITHUB_ACCESS_TOKEN. Not used on destroy: Terraform keeps no secrets for destroy-time provisioners, so export them in the shell that destroys."
  type        = map(string)
  default     = {}
  sensitive   = true
}
