"""Parsing MinIO notifications and direct retries into the objects and jobs ocr-process acts on."""

from __future__ import annotations

import json

import pytest

from common.errors import InvalidEvent
from common.rules.events import MAX_EVENT_RECORDS, parse_event


def _record(name: str = "s3:ObjectCreated:Put", key: str = "inbox/a+b%C3%BC.png", **obj: object) -> dict:
    return {
        "eventName": name,
        "s3": {"bucket": {"name": "documents"},
               "object": {"key": key, "size": 10, "eTag": "abc", "contentType": "image/png", **obj}},
    }


def test_keys_are_url_decoded_with_plus_as_space() -> None:
    """MinIO query-escapes keys; '+' is a space and %-escapes are UTF-8."""
    event = parse_event(json.dumps({"Records": [_record()]}).encode())
    assert event.objects[0].key == "inbox/a bü.png"
    assert event.objects[0].etag == "abc" and event.objects[0].size == 10


def test_several_records_each_become_an_object() -> None:
    """A delivery with several records yields them all, in order."""
    body = {"Records": [_record(key="inbox/one.png"), _record(key="inbox/two.png")]}
    assert [o.key for o in parse_event(json.dumps(body).encode()).objects] == ["inbox/one.png", "inbox/two.png"]


@pytest.mark.parametrize("name", ["s3:ObjectCreated:PutTagging", "s3:ObjectCreated:DeleteTagging",
                                  "s3:ObjectRemoved:Delete", "s3:ObjectAccessed:Get"])
def test_events_that_carry_no_new_content_are_ignored(name: str) -> None:
    """Tagging changes arrive as ObjectCreated too; they and non-create events yield nothing to process."""
    event = parse_event(json.dumps({"Records": [_record(name=name)]}).encode())
    assert event.objects == [] and event.job_ids == []


def test_upload_metadata_links_the_object_to_its_job() -> None:
    """The job id set by upload as x-amz-meta-job-id is read back from userMetadata, any case."""
    rec = _record(userMetadata={"X-Amz-Meta-Job-Id": "j-1", "X-Amz-Meta-Request-Id": "r-1"})
    obj = parse_event(json.dumps({"Records": [rec]}).encode()).objects[0]
    assert obj.job_id == "j-1" and obj.request_id == "r-1"


def test_direct_retry_by_job_id() -> None:
    """`{"job_id": ...}` asks to (re)process one job without an event."""
    assert parse_event(b'{"job_id": "abc"}').job_ids == ["abc"]


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"Records": "x"}', b'{"job_id": 5}',
                                  b'{"Records": [{"eventName": "s3:ObjectCreated:Put"}]}',
                                  b'{"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {}, "object": {}}}]}'])
def test_malformed_bodies_are_invalid_events(body: bytes) -> None:
    """Anything that is not a notification or a retry is an InvalidEvent with a message, not a crash."""
    with pytest.raises(InvalidEvent) as info:
        parse_event(body)
    assert info.value.code == "invalid_event" and info.value.message


def test_an_event_over_the_record_limit_is_refused_whole() -> None:
    """More records than MAX_EVENT_RECORDS is invalid_event naming the limit; none of them is taken."""
    body = {"Records": [_record(key=f"inbox/{i}.png") for i in range(MAX_EVENT_RECORDS + 1)]}
    with pytest.raises(InvalidEvent, match=rf"{MAX_EVENT_RECORDS + 1} records; the limit is {MAX_EVENT_RECORDS}"):
        parse_event(json.dumps(body).encode())
    at_limit = {"Records": [_record(key=f"inbox/{i}.png") for i in range(MAX_EVENT_RECORDS)]}
    assert len(parse_event(json.dumps(at_limit).encode()).objects) == MAX_EVENT_RECORDS


@pytest.mark.parametrize(("field", "record", "limit"), [
    ("bucket name", {"s3": {"bucket": {"name": "b" * 64}, "object": {"key": "inbox/a.png"}}}, "63"),
    ("object key", _record(key="inbox/" + "k" * 1020), "1024"),
    ("eTag", _record(eTag="e" * 81), "80"),
])
def test_a_record_naming_what_s3_cannot_hold_is_invalid(field: str, record: dict, limit: str) -> None:
    """Bucket, key and eTag beyond S3's own limits (and our columns) are refused naming the limit."""
    record.setdefault("eventName", "s3:ObjectCreated:Put")
    with pytest.raises(InvalidEvent, match=rf"{field} has \d+ \w+; the limit is {limit}"):
        parse_event(json.dumps({"Records": [record]}).encode())
