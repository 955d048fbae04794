"""modules/aws-s3-notifications applied with the real AWS provider against moto_server, end to end.

After ``terraform apply``, an S3 ``put_object`` is notified to the SNS topic,
which posts it to the subscribed function URL.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import unquote_plus

import boto3

from tests.deploy import corpus, localsink, tfrun

ROOT = corpus.REPO / "tests" / "deploy" / "terraform_moto"


def _apply(tmp_path: Path, moto_server: str, bucket: str, function_url: str) -> dict[str, object]:
    root = tfrun.scratch(tmp_path, ROOT)
    work = root / ROOT.relative_to(corpus.REPO)
    config = tfrun.cli_config(tmp_path)
    tfrun.terraform(work, "init", "-input=false", config=config)
    variables = [f"-var=endpoint={moto_server}", f"-var=bucket={bucket}", f"-var=function_url={function_url}"]
    tfrun.terraform(work, "apply", "-auto-approve", "-input=false", *variables, config=config)
    outputs: dict[str, object] = json.loads(tfrun.terraform(work, "output", "-json", config=config).stdout)
    return outputs


def test_put_object_reaches_the_subscribed_url(
    tmp_path: Path, moto_server: str, aws_credentials: dict[str, str]
) -> None:
    bucket = f"knevents-{uuid.uuid4().hex[:12]}"
    with localsink.running() as sink:
        outputs = _apply(tmp_path, moto_server, bucket, f"{sink.url}/uploads")
        s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
        try:
            s3.put_object(Bucket=bucket, Key="in/skip.txt", Body=b"x")  # filtered out: suffix .csv
            s3.put_object(Bucket=bucket, Key="in/data.csv", Body=b"a,b")
        finally:
            s3.close()
        hits = sink.wait_for(1)
        notifications = [json.loads(h.body) for h in hits]
    assert all(h.path == "/uploads" for h in hits)
    envelope = notifications[-1]
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == outputs["topic_arn"]["value"]  # type: ignore[index]
    records = json.loads(envelope["Message"])["Records"]
    # S3 (and moto) URL-encode the key in notifications
    assert [unquote_plus(r["s3"]["object"]["key"]) for r in records] == ["in/data.csv"]
    assert outputs["event_source_config"]["value"]["sns"] == {"endpoint": "/uploads"}  # type: ignore[index]
