"""Shared test configuration: real services are started by the fixture modules below.

Hypothesis runs without its per-example deadline everywhere: a deadline is a timed assertion, and on a loaded
CI machine it fails tests that are correct (seen on test_bus_naming). Speed belongs in bench/.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("knevents", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("knevents")

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
    "tests.fixtures.git_http",
    "tests.fixtures.openwhisk_api",
    "tests.fixtures.rabbitmq",
    "tests.fixtures.brokers",
    "tests.fixtures.kafka_secure",
    "tests.fixtures.mosquitto",
]
