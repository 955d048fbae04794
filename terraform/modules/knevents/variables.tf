variable "manifests_yaml" {
  description = "The YAML stream of `knevents render PATH... > knevents.yaml` (e.g. file(\"knevents.yaml\"))."
  type        = string
  default     = ""
}

variable "manifests_dir" {
  description = "Or: the directory written by `knevents render PATH... -o DIR`."
  type        = string
  default     = null
}

variable "field_manager" {
  description = "Server-side apply field manager name."
  type        = string
  default     = "knevents-terraform"
}

variable "force_conflicts" {
  description = "Take over fields another manager (kubectl, kn) set on the same objects."
  type        = bool
  default     = false
}

variable "wait_for_ready" {
  description = "Wait for every Knative Service, Trigger and PingSource to report Ready=True."
  type        = bool
  default     = false
}
