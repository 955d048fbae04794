"""modules/aws-s3-notifications applied with the real AWS provider against moto_server, end to end.

After ``terraform apply``, an S3 ``put_object`` is notified to the SNS topic,
which posts it to the subscribed function URL. In the full chain that URL is
the rendered s3 event source function (started as the image starts it), whose
``K_SINK`` is the rendered sensor function (standing in for the broker, which
only forwards), whose HTTP trigger posts to a local sink.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from knevents.deploy import render

from tests.deploy import corpus, functionproc, localsink, tfrun

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


def _event_source(bucket: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "uploads"},
        "spec": {
            "s3": {
                "csv": {
                    "bucket": {"name": bucket},
                    "events": ["s3:ObjectCreated:*"],
                    "filter": {"prefix": "", "suffix": ".csv"},
                    "sns": {"endpoint": "/csv"},
                }
            }
        },
    }


def _sensor(sink_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "csv-pipeline"},
        "spec": {
            "dependencies": [{"name": "csv", "eventSourceName": "uploads", "eventName": "csv"}],
            "triggers": [
                {
                    "template": {
                        "name": "process",
                        "http": {
                            "url": sink_url + "/process",
                            "method": "POST",
                            "payload": [
                                {
                                    "src": {
                                        "dependencyName": "csv",
                                        "dataKey": "notification.0.s3.object.key",
                                    },
                                    "dest": "key",
                                }
                            ],
                        },
                    }
                }
            ],
        },
    }


def test_put_object_fires_a_sensor_through_the_rendered_functions(
    tmp_path: Path, moto_server: str, aws_credentials: dict[str, str], nats_url: str
) -> None:
    bucket = f"knevents-{uuid.uuid4().hex[:12]}"
    rendering = render.render([_event_source(bucket)], [])
    source_port = functionproc.free_port()
    with localsink.running() as target, ThreadPoolExecutor(1) as pool:
        # terraform needs only the function's URL, not the function: apply while the functions start
        applied = pool.submit(
            _apply, tmp_path / "tf", moto_server, bucket, f"http://127.0.0.1:{source_port}/csv"
        )
        sensor_objs = render.render([], [_sensor(target.url)]).objects
        sensor = {o["kind"]: o for o in sensor_objs if o["kind"] in ("Service", "ConfigMap")}
        source = {o["kind"]: o for o in rendering.objects if o["kind"] in ("Service", "ConfigMap")}
        with functionproc.started(
            sensor["Service"], sensor["ConfigMap"], tmp_path / "sensor", {"KNEVENTS_NATS_URL": nats_url}
        ) as sensor_url:
            env = {"K_SINK": sensor_url, **aws_credentials}
            with functionproc.started(
                source["Service"], source["ConfigMap"], tmp_path / "source", env, port=source_port
            ):
                outputs = applied.result()
                assert outputs["event_source_config"]["value"]["sns"] == {"endpoint": "/csv"}  # type: ignore[index]
                s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
                try:
                    s3.put_object(Bucket=bucket, Key="in/skip.txt", Body=b"x")
                    s3.put_object(Bucket=bucket, Key="in/data 1.csv", Body=b"a,b")
                finally:
                    s3.close()
                (fired,) = target.wait_for(1, timeout=60)
    assert fired.path == "/process"
    assert json.loads(fired.body) == {"key": "in/data 1.csv"}
    assert fired.headers["knevents-event-ids"]
