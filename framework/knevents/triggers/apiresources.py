"""Plural and scope of every built-in Kubernetes kind (and the Argo/Knative kinds triggers commonly touch).

The k8s and argoWorkflow triggers declare the RBAC they need from their manifest
alone (no cluster at render time), so the resource name and whether the kind is
cluster-scoped (a ClusterRole) or namespaced (a Role) come from this table, not from
discovery. It lists every kind the Kubernetes API reference serves up to 1.37 — a
test checks it against the kinds in ``kubernetes-validate``'s schemas — plus the
Argo Workflows, Argo Events and Knative kinds. A kind that is not here (another
CRD) gets the plural CRDs conventionally use and is assumed namespaced, with a
warning from the caller. The runtime itself asks discovery (``namespace_of``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Resource", "known", "lookup", "plural"]

# group kind plural scope ("-" is the core group; N namespaced, C cluster-scoped)
_TABLE = """
- Binding bindings N
- ComponentStatus componentstatuses C
- ConfigMap configmaps N
- Endpoints endpoints N
- Event events N
- LimitRange limitranges N
- Namespace namespaces C
- Node nodes C
- PersistentVolume persistentvolumes C
- PersistentVolumeClaim persistentvolumeclaims N
- Pod pods N
- PodTemplate podtemplates N
- ReplicationController replicationcontrollers N
- ResourceQuota resourcequotas N
- Secret secrets N
- Service services N
- ServiceAccount serviceaccounts N
admissionregistration.k8s.io MutatingAdmissionPolicy mutatingadmissionpolicies C
admissionregistration.k8s.io MutatingAdmissionPolicyBinding mutatingadmissionpolicybindings C
admissionregistration.k8s.io MutatingWebhookConfiguration mutatingwebhookconfigurations C
admissionregistration.k8s.io ValidatingAdmissionPolicy validatingadmissionpolicies C
admissionregistration.k8s.io ValidatingAdmissionPolicyBinding validatingadmissionpolicybindings C
admissionregistration.k8s.io ValidatingWebhookConfiguration validatingwebhookconfigurations C
apiextensions.k8s.io CustomResourceDefinition customresourcedefinitions C
apiregistration.k8s.io APIService apiservices C
apps ControllerRevision controllerrevisions N
apps DaemonSet daemonsets N
apps Deployment deployments N
apps ReplicaSet replicasets N
apps StatefulSet statefulsets N
authentication.k8s.io SelfSubjectReview selfsubjectreviews C
authentication.k8s.io TokenRequest serviceaccounts/token N
authentication.k8s.io TokenReview tokenreviews C
authorization.k8s.io LocalSubjectAccessReview localsubjectaccessreviews N
authorization.k8s.io SelfSubjectAccessReview selfsubjectaccessreviews C
authorization.k8s.io SelfSubjectRulesReview selfsubjectrulesreviews C
authorization.k8s.io SubjectAccessReview subjectaccessreviews C
autoscaling HorizontalPodAutoscaler horizontalpodautoscalers N
autoscaling Scale deployments/scale N
batch CronJob cronjobs N
batch Job jobs N
certificates.k8s.io CertificateSigningRequest certificatesigningrequests C
certificates.k8s.io ClusterTrustBundle clustertrustbundles C
certificates.k8s.io PodCertificateRequest podcertificaterequests N
coordination.k8s.io Lease leases N
coordination.k8s.io LeaseCandidate leasecandidates N
discovery.k8s.io EndpointSlice endpointslices N
events.k8s.io Event events N
flowcontrol.apiserver.k8s.io FlowSchema flowschemas C
flowcontrol.apiserver.k8s.io PriorityLevelConfiguration prioritylevelconfigurations C
internal.apiserver.k8s.io StorageVersion storageversions C
lifecycle.k8s.io Eviction pods/eviction N
lifecycle.k8s.io EvictionRequest evictionrequests N
networking.k8s.io IPAddress ipaddresses C
networking.k8s.io Ingress ingresses N
networking.k8s.io IngressClass ingressclasses C
networking.k8s.io NetworkPolicy networkpolicies N
networking.k8s.io ServiceCIDR servicecidrs C
node.k8s.io RuntimeClass runtimeclasses C
policy Eviction pods/eviction N
policy PodDisruptionBudget poddisruptionbudgets N
rbac.authorization.k8s.io ClusterRole clusterroles C
rbac.authorization.k8s.io ClusterRoleBinding clusterrolebindings C
rbac.authorization.k8s.io Role roles N
rbac.authorization.k8s.io RoleBinding rolebindings N
resource.k8s.io DeviceClass deviceclasses C
resource.k8s.io DeviceTaintRule devicetaintrules C
resource.k8s.io ResourceClaim resourceclaims N
resource.k8s.io ResourceClaimTemplate resourceclaimtemplates N
resource.k8s.io ResourcePoolStatusRequest resourcepoolstatusrequests C
resource.k8s.io ResourceSlice resourceslices C
scheduling.k8s.io CompositePodGroup compositepodgroups N
scheduling.k8s.io PodGroup podgroups N
scheduling.k8s.io PriorityClass priorityclasses C
scheduling.k8s.io Workload workloads N
storage.k8s.io CSIDriver csidrivers C
storage.k8s.io CSINode csinodes C
storage.k8s.io CSIStorageCapacity csistoragecapacities N
storage.k8s.io StorageClass storageclasses C
storage.k8s.io VolumeAttachment volumeattachments C
storage.k8s.io VolumeAttributesClass volumeattributesclasses C
storagemigration.k8s.io StorageVersionMigration storageversionmigrations C
argoproj.io ClusterWorkflowTemplate clusterworkflowtemplates C
argoproj.io CronWorkflow cronworkflows N
argoproj.io EventBus eventbus N
argoproj.io EventSource eventsources N
argoproj.io Sensor sensors N
argoproj.io Workflow workflows N
argoproj.io WorkflowArtifactGCTask workflowartifactgctasks N
argoproj.io WorkflowEventBinding workfloweventbindings N
argoproj.io WorkflowTaskResult workflowtaskresults N
argoproj.io WorkflowTaskSet workflowtasksets N
argoproj.io WorkflowTemplate workflowtemplates N
serving.knative.dev Configuration configurations N
serving.knative.dev Revision revisions N
serving.knative.dev Route routes N
serving.knative.dev Service services N
eventing.knative.dev Broker brokers N
eventing.knative.dev EventType eventtypes N
eventing.knative.dev Trigger triggers N
messaging.knative.dev Channel channels N
messaging.knative.dev Subscription subscriptions N
sources.knative.dev ApiServerSource apiserversources N
sources.knative.dev ContainerSource containersources N
sources.knative.dev PingSource pingsources N
sources.knative.dev SinkBinding sinkbindings N
"""


@dataclass(frozen=True)
class Resource:
    """One kind as the API serves it."""

    group: str
    kind: str
    plural: str
    """The resource name RBAC rules use (``deployments``; ``pods/eviction`` for a subresource kind)."""
    namespaced: bool


def _parse(text: str) -> dict[tuple[str, str], Resource]:
    table = {}
    for line in text.split("\n"):
        if line.strip():
            group, kind, plural_name, scope = line.split()
            group = "" if group == "-" else group
            table[(group, kind)] = Resource(group, kind, plural_name, scope == "N")
    return table


_RESOURCES = _parse(_TABLE)


def lookup(group: str, kind: str) -> Resource | None:
    """The kind of API group ``group`` (``""`` for core), or None when it is not in the table."""
    return _RESOURCES.get((group, kind))


def known() -> list[Resource]:
    """Every kind in the table."""
    return list(_RESOURCES.values())


def plural(kind: str) -> str:
    """The plural CRDs conventionally use (``Policy`` → ``policies``, ``Bus`` → ``buses``)."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"
