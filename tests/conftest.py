"""Shared test configuration: real services are started by the fixture modules below."""

pytest_plugins = [
    "tests.fixtures.nats",
    "tests.fixtures.kube",
    "tests.fixtures.aws",
    "tests.fixtures.pubsub",
    "tests.fixtures.slack_api",
    "tests.fixtures.argo_grpc",
    "tests.fixtures.smtp",
    "tests.fixtures.azurite",
    "tests.fixtures.sshd",
    "tests.fixtures.openwhisk_api",
    "tests.fixtures.rabbitmq",
    "tests.fixtures.brokers",
    "tests.fixtures.mosquitto",
]
