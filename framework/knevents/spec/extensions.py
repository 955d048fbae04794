"""knevents' additions to the Argo Events schema, as schema fragments the model generator merges in.

Argo Events reads S3 notifications only through MinIO's own listener and pulls
Pub/Sub messages. Serverless functions need the push forms instead, so knevents
adds a few fields. They live here, as data, so that ``scripts/gen_spec_models.py``
emits them into ``models.py`` next to the upstream classes (one namespace for
everyone) while the upstream part stays a faithful translation of
``schema.json``. Every class and field added here is marked "knevents extension"
in the generated code and documented in docs/spec.md.

This module must stay pure data: the generator loads it by file path.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFINITIONS", "PATCHES"]

_S3 = "#/definitions/io.knevents.v1alpha1.S3EventSource"

DEFINITIONS: dict[str, dict[str, Any]] = {
    "io.knevents.v1alpha1.S3EventSource": {
        "description": (
            "S3EventSource is an S3/MinIO bucket notification source: the upstream S3Artifact plus how the "
            "notifications reach knevents (knevents extension). When neither `sns` nor `sqs` is set, "
            "notifications are pushed by SNS to the endpoint `/<event name>`."
        ),
        "x-knevents-base": "io.argoproj.events.v1alpha1.S3Artifact",
        "properties": {
            "roleARN": {
                "type": "string",
                "description": "IAM role to assume for the AWS calls (subscription set-up, SQS polling).",
            },
            "sns": {
                "$ref": "#/definitions/io.knevents.v1alpha1.S3SNSNotifications",
                "description": "Receive the bucket notifications pushed by an SNS topic subscription.",
            },
            "sqs": {
                "$ref": "#/definitions/io.knevents.v1alpha1.S3SQSNotifications",
                "description": "Poll the bucket notifications from an SQS queue.",
            },
            "webhook": {
                "$ref": "#/definitions/io.argoproj.events.v1alpha1.WebhookContext",
                "description": "minio only: receive the posts of MinIO's webhook notification target here.",
            },
        },
        "type": "object",
    },
    "io.knevents.v1alpha1.S3SNSNotifications": {
        "description": "S3SNSNotifications: S3 notifications delivered by SNS HTTP(S) push (knevents extension).",
        "properties": {
            "endpoint": {"type": "string", "description": "HTTP path SNS posts to; default `/<event name>`."},
            "port": {"type": "string", "description": "Port to listen on; default the function's port."},
            "method": {"type": "string", "description": "HTTP method; default POST."},
            "validateSignature": {
                "type": "boolean",
                "description": "Check the SNS message signature against the AWS signing certificate.",
            },
        },
        "type": "object",
    },
    "io.knevents.v1alpha1.S3SQSNotifications": {
        "description": "S3SQSNotifications: S3 notifications polled from an SQS queue (knevents extension).",
        "properties": {
            "queue": {"type": "string", "description": "Name of the SQS queue the bucket notifies."},
            "queueAccountId": {"type": "string", "description": "AWS account that owns the queue."},
            "waitTimeSeconds": {
                "type": "integer",
                "format": "int64",
                "description": "Long-poll wait, seconds.",
            },
            "endpoint": {"type": "string", "description": "SQS endpoint URL (e.g. a local emulator)."},
            "region": {"type": "string", "description": "AWS region of the queue; default the bucket's."},
        },
        "type": "object",
    },
    "io.knevents.v1alpha1.PubSubPush": {
        "description": "PubSubPush: receive Pub/Sub push deliveries instead of pulling (knevents extension).",
        "properties": {
            "endpoint": {"type": "string", "description": "HTTP path the push subscription posts to."},
            "port": {"type": "string", "description": "Port to listen on; default the function's port."},
            "method": {"type": "string", "description": "HTTP method; default POST."},
            "audience": {"type": "string", "description": "Expected `aud` of the push OIDC token."},
            "email": {"type": "string", "description": "Expected service account email of the push token."},
            "verifyToken": {"type": "boolean", "description": "Verify the push request's OIDC token."},
        },
        "type": "object",
    },
    "io.knevents.v1alpha1.AMQPTrigger": {
        "description": (
            "AMQPTrigger publishes the resolved payload to a RabbitMQ (AMQP 0-9-1) exchange with publisher "
            "confirms (knevents extension; Argo has no AMQP trigger, argo-events#3091)."
        ),
        "x-knevents-root": "Sensor",
        "properties": {
            "url": {"type": "string", "description": "amqp:// or amqps:// URL of the broker."},
            "urlSecret": {
                "$ref": "#/definitions/io.k8s.api.core.v1.SecretKeySelector",
                "description": "Secret holding the URL (instead of `url`).",
            },
            "exchangeName": {
                "type": "string",
                "description": "Exchange to publish to; empty means the default exchange (routingKey = queue name).",
            },
            "routingKey": {"type": "string", "description": "Routing key of the published message."},
            "contentType": {"type": "string", "description": "content-type property; default application/json."},
            "persistent": {
                "type": "boolean",
                "description": "delivery-mode 2 (kept across broker restarts by durable queues); default true.",
            },
            "mandatory": {
                "type": "boolean",
                "description": "Fail (retryably) when no queue is bound for the routing key; default true.",
            },
            "headers": {
                "additionalProperties": {"type": "string"},
                "type": "object",
                "description": "Extra message headers.",
            },
            "auth": {
                "$ref": "#/definitions/io.argoproj.events.v1alpha1.BasicAuth",
                "description": "Username and password from Secrets (replacing any in the URL).",
            },
            "tls": {
                "$ref": "#/definitions/io.argoproj.events.v1alpha1.TLSConfig",
                "description": "TLS for an amqps:// URL: CA, client cert and key from Secrets.",
            },
            "parameters": {
                "items": {"$ref": "#/definitions/io.argoproj.events.v1alpha1.TriggerParameter"},
                "type": "array",
                "description": "Parameters applied to this template (e.g. the routingKey) from the events.",
            },
            "payload": {
                "items": {"$ref": "#/definitions/io.argoproj.events.v1alpha1.TriggerParameter"},
                "type": "array",
                "description": "The message body, built from the events as for the http and nats triggers.",
            },
        },
        "type": "object",
    },
}
"""Extra definitions, in the schema's own form; ``x-knevents-base`` names the upstream class extended,
``x-knevents-root`` the kind that uses it (default EventSource), which decides the generated module."""

PATCHES: dict[str, dict[str, Any]] = {
    "io.argoproj.events.v1alpha1.EventSourceSpec": {
        "s3": {
            "additionalProperties": {"$ref": _S3},
            "description": "S3 bucket notification sources (knevents extension; same shape as minio).",
            "type": "object",
        },
        "minio": {
            "additionalProperties": {"$ref": _S3},
            "description": "Minio event sources (knevents adds `sns`/`sqs` delivery).",
            "type": "object",
        },
    },
    "io.argoproj.events.v1alpha1.StripeEventSource": {
        "signingSecret": {
            "$ref": "#/definitions/io.k8s.api.core.v1.SecretKeySelector",
            "description": "The endpoint's signing secret (whsec_...): verify Stripe-Signature (knevents extension).",
        },
    },
    "io.argoproj.events.v1alpha1.BitbucketEventSource": {
        "webhookSecret": {
            "$ref": "#/definitions/io.k8s.api.core.v1.SecretKeySelector",
            "description": "Secret of the hook: verify X-Hub-Signature, set it on created hooks (knevents extension).",
        },
    },
    "io.argoproj.events.v1alpha1.TriggerTemplate": {
        "amqp": {
            "$ref": "#/definitions/io.knevents.v1alpha1.AMQPTrigger",
            "description": "Publish to a RabbitMQ exchange (knevents extension).",
        },
    },
    "io.argoproj.events.v1alpha1.PubSubEventSource": {
        "push": {
            "$ref": "#/definitions/io.knevents.v1alpha1.PubSubPush",
            "description": "Receive push deliveries instead of pulling (knevents extension).",
        },
    },
}
"""Per upstream definition: properties added or replaced."""
