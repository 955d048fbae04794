"""The awsLambda trigger invokes a function on moto_server (real HTTP, boto3 underneath)."""

from __future__ import annotations

import io
import json
import urllib.request
import uuid
import zipfile

import boto3
import pytest
from knevents import errors, triggers
from knevents.secrets import env_name

from tests.unit.triggers import trigger_support as support

REGION = "us-east-1"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def lambda_endpoint(
    moto_server: str, aws_credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> str:
    # moto runs functions in Docker unless told not to; its simple backend answers without running them.
    request = urllib.request.Request(
        f"{moto_server}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


def make_function(endpoint: str) -> str:
    name = f"fn-{uuid.uuid4().hex[:8]}"
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
    role = iam.create_role(
        RoleName=f"role-{name}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    boto3.client("lambda", endpoint_url=endpoint, region_name=REGION).create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="handler.handle", Code={"ZipFile": _zip()}
    )
    return name


def keys() -> dict[str, str]:
    return {
        env_name("SECRET", "aws", "access"): "testing",
        env_name("SECRET", "aws", "secret"): "testing-secret-value",
    }


def lambda_template(function: str, **fields: object) -> dict[str, object]:
    return {
        "name": "invoke",
        "awsLambda": {
            "functionName": function,
            "region": REGION,
            "payload": [],
            "accessKey": {"name": "aws", "key": "access"},
            "secretKey": {"name": "aws", "key": "secret"},
            **fields,
        },
    }


async def test_invokes_the_function_with_the_payload(lambda_endpoint: str) -> None:
    function = make_function(lambda_endpoint)
    resolved = support.resolved(lambda_template(function), payload=b'{"project":"kubedojo"}')
    result = await triggers.fire(resolved, support.context(secrets=keys()))
    assert result.status == 200
    assert result.detail == f"invoked Lambda {function} ({REGION}, RequestResponse) -> 200"


async def test_event_invocation_answers_202(lambda_endpoint: str) -> None:
    function = make_function(lambda_endpoint)
    resolved = support.resolved(lambda_template(function, invocationType="Event"), payload=b"{}")
    assert (await triggers.fire(resolved, support.context(secrets=keys()))).status == 202


async def test_unreachable_endpoint_is_retryable_and_hides_the_secret_key(
    aws_credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    resolved = support.resolved(lambda_template("fn"), payload=b"{}")
    with pytest.raises(
        errors.TriggerRetryableError, match="invoking Lambda fn: EndpointConnectionError"
    ) as caught:
        await triggers.fire(resolved, support.context(secrets=keys()))
    assert "testing-secret-value" not in str(caught.value)


async def test_bad_invocation_type_is_refused() -> None:
    resolved = support.resolved(lambda_template("f", invocationType="Later"), payload=b"{}")
    with pytest.raises(errors.TriggerError, match="invocationType 'Later'"):
        await triggers.fire(resolved, support.context(secrets=keys()))
