"""Deployment: turn Argo EventSource / Sensor / EventBus manifests into Knative objects.

``knevents render`` is the user-facing door; the modules here are pure
functions from manifest dictionaries to Kubernetes object dictionaries (and
``kn`` command lines). Nothing here talks to a cluster or imports a
Kubernetes client: what is rendered is checked against Knative's schemas in
the tests and applied by ``kubectl``, ``kn`` or Terraform.

Layout: :mod:`options` (what the user can choose), :mod:`names` (naming and
well-known constants), :mod:`objects` (one builder per Kubernetes kind),
:mod:`refs` (secrets a spec needs), :mod:`eventsource`, :mod:`sensor`,
:mod:`rbac`, :mod:`eventbus` (one module per Argo kind), :mod:`render`
(the whole set, as YAML) and :mod:`kn` (as ``kn`` commands).
"""
