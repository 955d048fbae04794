"""Argo-format EventSource YAML for the cloud types loads and builds the right source through the registry."""

from __future__ import annotations

import pytest
from knevents import sources, validation
from knevents.sources import base, minio, pubsub, s3, sns, sqs

CTX = base.SourceContext(event_source_name="es")

SNS = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: aws-sns}
spec:
  sns:
    example:
      topicArn: arn:aws:sns:us-east-1:123456789012:test
      webhook: {endpoint: "/", port: "12000", method: POST, url: "http://reachable"}
      accessKey: {key: accesskey, name: aws-secret}
      secretKey: {key: secretkey, name: aws-secret}
      region: us-east-1
"""

SQS = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: aws-sqs}
spec:
  sqs:
    example:
      jsonBody: true
      accessKey: {key: accesskey, name: aws-secret}
      secretKey: {key: secretkey, name: aws-secret}
      region: us-east-1
      queue: test
      waitTimeSeconds: 20
"""

PUBSUB_PULL = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: gcp-pubsub}
spec:
  pubSub:
    example:
      jsonBody: true
      projectID: my-project
      topic: test
      subscriptionID: test-sub
      credentialSecret: {name: my-secret, key: secret-key}
"""

PUBSUB_PUSH = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: gcp-pubsub}
spec:
  pubSub:
    example:
      projectID: my-project
      subscriptionID: test-push
      push: {endpoint: /pubsub, port: "8080", audience: "https://x.example.com/pubsub", email: a@b.iam.gserviceaccount.com}
"""

MINIO = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: minio}
spec:
  minio:
    example:
      bucket: {name: input}
      endpoint: minio-service.argo-events:9000
      events: [s3:ObjectCreated:Put, s3:ObjectRemoved:Delete]
      insecure: true
      accessKey: {key: accesskey, name: artifacts-minio}
      secretKey: {key: secretkey, name: artifacts-minio}
"""

S3_SEED = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: s3-events, namespace: argo-events}
spec:
  s3:
    mybucket:
      bucket: {name: my-bucket}
      events: ["s3:ObjectCreated:*"]
      filter: {prefix: uploads/, suffix: .csv}
      roleARN: arn:aws:iam::123456789012:role/my-role
      region: us-east-1
"""

S3_SQS = """
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {name: s3-events}
spec:
  s3:
    data-upload:
      bucket: {name: data-pipeline-input}
      events: ["s3:ObjectCreated:*"]
      endpoint: s3.amazonaws.com
      region: us-east-1
      sqs: {queue: data-pipeline-input-events, waitTimeSeconds: 20}
"""


@pytest.mark.parametrize(
    ("text", "key", "kind"),
    [
        (SNS, "sns", sns.SnsSource),
        (SQS, "sqs", sqs.SqsSource),
        (PUBSUB_PULL, "pubSub", pubsub.PubSubPullSource),
        (PUBSUB_PUSH, "pubSub", pubsub.PubSubPushSource),
        (MINIO, "minio", minio.MinioListenSource),
        (S3_SEED, "s3", s3.S3SnsSource),
        (S3_SQS, "s3", s3.S3SqsSource),
    ],
)
def test_yaml_builds_the_source_through_the_registry(text: str, key: str, kind: type) -> None:
    event_source = validation.load_one(text)
    entries = getattr(event_source.spec, {"pubSub": "pub_sub"}.get(key, key))
    (name, config), *_ = entries.items()
    source = sources.find(key).factory(name, config, CTX)
    assert isinstance(source, kind)
    assert source.event_name == name
