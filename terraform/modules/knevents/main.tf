# Deploy `knevents render` output with kubernetes_manifest (server-side apply).
#
# Caveat: kubernetes_manifest reads the CRD schema of every object at *plan* time, so Knative
# Serving and Eventing (and eventing-natss / the Kafka broker when an EventBus uses them) must be
# installed before the first plan of this module: install them in an earlier apply or stage.
#
# The parsing and ordering are in ./manifests (no provider; covered by `terraform test`).

module "manifests" {
  source    = "./manifests"
  yaml      = var.manifests_yaml
  directory = var.manifests_dir
}

resource "kubernetes_manifest" "base" {
  for_each = module.manifests.base
  manifest = each.value

  field_manager {
    name            = var.field_manager
    force_conflicts = var.force_conflicts
  }
}

resource "kubernetes_manifest" "workload" {
  for_each = module.manifests.workloads
  manifest = each.value

  field_manager {
    name            = var.field_manager
    force_conflicts = var.force_conflicts
  }

  # Knative adds annotations and labels of its own (creator, lastModifier)
  computed_fields = ["metadata.annotations", "metadata.labels", "spec.template.metadata.annotations"]

  dynamic "wait" {
    for_each = var.wait_for_ready ? [1] : []
    content {
      condition {
        type   = "Ready"
        status = "True"
      }
    }
  }

  depends_on = [kubernetes_manifest.base]
}
