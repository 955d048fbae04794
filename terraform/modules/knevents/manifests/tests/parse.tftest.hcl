# Offline: no provider, plan-only.

run "stream_is_split_and_grouped" {
  command = plan

  variables {
    yaml = <<-EOT
      ---
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: hooks-eventsource
        namespace: ci
      data:
        spec.yaml: |
          apiVersion: argoproj.io/v1alpha1
          kind: EventSource
          metadata:
            name: hooks
          ---
          still: the same literal block
      ---
      apiVersion: serving.knative.dev/v1
      kind: Service
      metadata:
        name: hooks-eventsource
        namespace: ci
      spec: {}
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: ClusterRole
      metadata:
        name: knevents-ci-pr-sensor
      rules: []
    EOT
  }

  assert {
    condition     = length(output.all) == 3
    error_message = "three documents"
  }
  assert {
    condition     = keys(output.base) == ["ClusterRole//knevents-ci-pr-sensor", "ConfigMap/ci/hooks-eventsource"]
    error_message = "ConfigMaps and RBAC are base objects; cluster-scoped keys have an empty namespace"
  }
  assert {
    condition     = keys(output.workloads) == ["Service/ci/hooks-eventsource"]
    error_message = "the Knative Service is a workload"
  }
  assert {
    condition     = strcontains(output.base["ConfigMap/ci/hooks-eventsource"].data["spec.yaml"], "still: the same literal block")
    error_message = "an indented --- inside a block scalar does not split documents"
  }
}

run "rendered_directory" {
  command = plan

  variables {
    directory = "tests/rendered"
  }

  assert {
    condition     = length(output.base) == 2 && length(output.workloads) == 2
    error_message = "files are read, kustomization.yaml is skipped"
  }
}

run "duplicates_are_refused" {
  command = plan

  variables {
    yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n"
  }

  expect_failures = [output.all]
}

run "foreign_documents_are_refused" {
  command = plan

  variables {
    yaml = "---\nhello: world\n"
  }

  expect_failures = [output.all]
}
