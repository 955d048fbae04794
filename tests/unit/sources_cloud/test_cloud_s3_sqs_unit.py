"""S3 record filtering and the SQS payload shape, without a network."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from knevents import errors, events, web
from knevents.sources import base, s3, sqs
from knevents.spec import models

from tests.fixtures.aws import SnsSigner

CTX = base.SourceContext(event_source_name="s3-events")


def _record(key: str, name: str = "ObjectCreated:Put", bucket: str = "my-bucket") -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 3}},
    }


def _config(**extra: Any) -> models.S3EventSource:
    fields: dict[str, Any] = {
        "bucket": {"name": "my-bucket"},
        "events": ["s3:ObjectCreated:*"],
        "filter": {"prefix": "uploads/", "suffix": ".csv"},
        **extra,
    }
    return models.S3EventSource.model_validate(fields)


@pytest.mark.parametrize(
    ("record", "kept"),
    [
        (_record("uploads/a.csv"), True),
        (_record("uploads/a.csv", "ObjectCreated:CompleteMultipartUpload"), True),
        (_record("uploads/a.csv", "ObjectRemoved:Delete"), False),
        (_record("other/a.csv"), False),
        (_record("uploads/a.txt"), False),
        (_record("uploads/a.csv", bucket="other-bucket"), False),
        (_record("uploads/my+file.csv"), True),
        ("not a record", False),
    ],
)
def test_record_filter(record: Any, kept: bool) -> None:
    assert s3.RecordFilter.from_config(_config()).matches(record) is kept


def test_filter_matches_the_url_decoded_key() -> None:
    flt = s3.RecordFilter(bucket="b", prefix="my dir/")
    assert flt.matches(_record("my+dir/x", bucket="b"))


def test_exact_event_names_and_no_event_list() -> None:
    exact = s3.RecordFilter(events=("s3:ObjectRemoved:Delete",))
    assert exact.matches(_record("k", "ObjectRemoved:Delete"))
    assert not exact.matches(_record("k", "ObjectRemoved:DeleteMarkerCreated"))
    assert s3.RecordFilter().matches(_record("k", "Anything:AtAll"))


def test_test_event_is_ignored_and_garbage_is_an_error() -> None:
    assert s3.records({"Service": "Amazon S3", "Event": "s3:TestEvent"}) is None
    with pytest.raises(errors.EventError, match="Records"):
        s3.records({"hello": 1})


def _sns_request(doc: Any) -> web.Request:
    message = SnsSigner.notification("arn:aws:sns:us-east-1:1:t", json.dumps(doc))
    return web.Request("POST", "/mybucket", web.Headers(), json.dumps(message).encode())


async def test_sns_mode_is_the_default_and_makes_one_event_per_matching_record() -> None:
    source = s3.SOURCE.factory("mybucket", _config(), CTX)
    assert isinstance(source, s3.S3SnsSource)
    assert source.routes() == [base.Route(endpoint="/mybucket", method="POST", port=None)]
    doc = {"Records": [_record("uploads/a.csv"), _record("skip.txt"), _record("uploads/b.csv")]}
    result = await source.handle(_sns_request(doc))
    assert result.response is None
    keys = [events.data_json(e)["notification"][0]["s3"]["object"]["key"] for e in result.events]
    assert keys == ["uploads/a.csv", "uploads/b.csv"]
    assert {e.type for e in result.events} == {"s3"}
    assert len({e.id for e in result.events}) == 2


async def test_minio_key_gives_the_minio_type_and_metadata_rides_along() -> None:
    source = s3.create_for("minio", "mybucket", _config(metadata={"team": "data"}), CTX)
    result = await source.handle(_sns_request({"Records": [_record("uploads/a.csv")]}))
    (event,) = result.events
    assert event.type == "minio"
    assert events.data_json(event)["metadata"] == {"team": "data"}


async def test_sns_mode_answers_200_without_events_for_a_test_event() -> None:
    source = s3.SOURCE.factory("mybucket", _config(), CTX)
    result = await source.handle(_sns_request({"Service": "Amazon S3", "Event": "s3:TestEvent"}))
    assert result.events == ()
    assert result.response is not None and result.response.status == 200


async def test_sns_message_that_is_not_an_s3_event_is_a_400() -> None:
    source = s3.SOURCE.factory("mybucket", _config(), CTX)
    result = await source.handle(_sns_request({"nope": True}))
    assert result.response is not None and result.response.status == 400


def test_sqs_mode_unwraps_direct_and_sns_wrapped_bodies() -> None:
    source = s3.SOURCE.factory("mybucket", _config(sqs={"queue": "q", "endpoint": "http://127.0.0.1:1"}), CTX)
    assert isinstance(source, s3.S3SqsSource)
    doc = {"Records": [_record("uploads/a.csv")]}
    direct = source.convert({"MessageId": "m1", "Body": json.dumps(doc)})
    wrapped = source.convert(
        {
            "MessageId": "m2",
            "Body": json.dumps(SnsSigner.notification("arn:aws:sns:us-east-1:1:t", json.dumps(doc))),
        }
    )
    assert [events.data_json(e)["notification"][0]["s3"]["object"]["key"] for e in (*direct, *wrapped)] == [
        "uploads/a.csv",
        "uploads/a.csv",
    ]
    with pytest.raises(errors.EventError):
        source.convert({"MessageId": "m3", "Body": "not json"})


def test_both_sns_and_sqs_is_a_spec_error() -> None:
    with pytest.raises(errors.SpecError, match="either sns or sqs"):
        s3.SOURCE.factory("mybucket", _config(sqs={"queue": "q"}, sns={}), CTX)


def test_missing_bucket_is_a_spec_error() -> None:
    with pytest.raises(errors.SpecError, match=r"bucket\.name is required"):
        s3.SOURCE.factory("mybucket", models.S3EventSource.model_validate({"events": []}), CTX)


def test_sqs_payload_with_json_body_and_attributes() -> None:
    message = {
        "MessageId": "abc",
        "Body": '{"x": 1}',
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "order"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    }
    data = sqs.message_data(message, json_body=True, metadata={"m": "v"})
    assert data == {
        "messageId": "abc",
        "messageAttributes": {
            "kind": {
                "BinaryListValues": None,
                "BinaryValue": None,
                "DataType": "String",
                "StringListValues": None,
                "StringValue": "order",
            },
            "blob": {
                "BinaryListValues": None,
                "BinaryValue": "AAE=",
                "DataType": "Binary",
                "StringListValues": None,
                "StringValue": None,
            },
        },
        "body": {"x": 1},
        "metadata": {"m": "v"},
    }


def test_sqs_payload_without_json_body_is_base64_as_argo_marshals_bytes() -> None:
    data = sqs.message_data({"MessageId": "abc", "Body": "plain text"}, json_body=False, metadata=None)
    assert base64.b64decode(data["body"]) == b"plain text"
    assert data["messageAttributes"] is None
    assert "metadata" not in data


def test_sqs_json_body_that_is_not_json_is_an_event_error() -> None:
    with pytest.raises(errors.EventError, match="jsonBody"):
        sqs.message_data({"MessageId": "abc", "Body": "plain"}, json_body=True, metadata=None)


def test_sqs_event_id_is_derived_from_the_message_id() -> None:
    config = models.SQSEventSource(queue="q", region="us-east-1", waitTimeSeconds=1, jsonBody=True)
    source = sqs.SqsSource("example", config, base.SourceContext(event_source_name="aws-sqs"))
    first = source.convert({"MessageId": "m-1", "Body": "{}"})[0]
    again = source.convert({"MessageId": "m-1", "Body": "{}"})[0]
    other = source.convert({"MessageId": "m-2", "Body": "{}"})[0]
    assert first.id == again.id != other.id
    assert len(first.id) == 32
    assert (first.source, first.subject, first.type) == ("aws-sqs", "example", "sqs")


async def test_object_key_is_url_decoded_in_the_event() -> None:
    source = s3.SOURCE.factory("mybucket", _config(), CTX)
    result = await source.handle(_sns_request({"Records": [_record("uploads%2Fmy+report%C3%A9.csv")]}))
    (event,) = result.events
    assert events.data_json(event)["notification"][0]["s3"]["object"]["key"] == "uploads/my reporté.csv"


@pytest.mark.parametrize("seconds", [-1, 21])
def test_wait_time_outside_sqs_range_is_a_spec_error(seconds: int) -> None:
    config = models.SQSEventSource(queue="q", region="us-east-1", waitTimeSeconds=seconds)
    with pytest.raises(errors.SpecError, match=r"sqs\.example\.waitTimeSeconds"):
        sqs.create("example", config, CTX)
    with pytest.raises(errors.SpecError, match=r"s3\.mybucket\.sqs\.waitTimeSeconds"):
        s3.SOURCE.factory("mybucket", _config(sqs={"queue": "q", "waitTimeSeconds": seconds}), CTX)
