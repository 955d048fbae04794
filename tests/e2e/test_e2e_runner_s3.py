"""The s3-csv-pipeline example against moto_server: an upload to S3 → SQS → the S3 source → a Workflow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import harness


@pytest.fixture
def runners() -> Iterator[list[harness.RunnerProcess]]:
    started: list[harness.RunnerProcess] = []
    yield started
    for runner in started:
        runner.kill()


def _wire_bucket(moto_url: str, aws_env: dict[str, str]) -> Any:
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    s3 = session.client("s3", endpoint_url=moto_url)
    sqs = session.client("sqs", endpoint_url=moto_url)
    s3.create_bucket(Bucket="data-pipeline")
    queue_url = sqs.create_queue(QueueName="data-pipeline-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket="data-pipeline", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    return s3


def test_csv_upload_starts_the_pipeline_with_the_object_key(
    tmp_path: Path, runners: list[harness.RunnerProcess], moto_server: str, aws_credentials: dict[str, str]
) -> None:
    s3 = _wire_bucket(moto_server, aws_credentials)
    host = moto_server.removeprefix("http://")
    manifests = harness.prepare("s3-csv-pipeline", tmp_path / "m", {
        "http://localhost:5000": moto_server, "localhost:5000": host})
    env = harness.knevents_env(tmp_path, {
        **aws_credentials,
        "KNEVENTS_SECRET_S3_CREDENTIALS_ACCESSKEY": "testing",
        "KNEVENTS_SECRET_S3_CREDENTIALS_SECRETKEY": "testing",
    })
    runner = harness.RunnerProcess([manifests], tmp_path / "state", env).start()
    runners.append(runner)
    # The notification filter of the example is in the source (prefix uploads/, suffix .csv): the queue gets
    # every ObjectCreated, the source drops what does not match.
    s3.put_object(Bucket="data-pipeline", Key="other/ignored.csv", Body=b"id\n1\n")
    s3.put_object(Bucket="data-pipeline", Key="uploads/notes.txt", Body=b"hello")
    s3.put_object(Bucket="data-pipeline", Key="uploads/sales.csv", Body=b"id,amount\n1,9.5\n")
    [fired] = runner.wait_for(lambda r: r.get("tag") == "fired" and r.get("trigger") == "process-csv", "firing")
    [printed] = runner.wait_for(lambda r: "resource" in r, "the printed Workflow")
    assert printed["resource"]["spec"]["arguments"]["parameters"][0]["value"] == "uploads/sales.csv"
    s3.put_object(Bucket="data-pipeline", Key="uploads/marker.csv", Body=b"id\n")
    runner.wait_for(lambda r: r.get("tag") == "fired", "the marker's firing", count=2)
    keys = [json.dumps(r["resource"]) for r in runner.matching(lambda r: "resource" in r)]
    assert not any("ignored.csv" in k or "notes.txt" in k for k in keys)
    assert runner.stop() == 0
    assert fired["kind"] == "argoWorkflow"
