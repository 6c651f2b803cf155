"""The MinIO adapter against moto's S3 server: round trips, metadata, links, deletion, and faults as our errors."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import struct
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from common.adapters import storage
from common.config import Settings, load_settings
from common.errors import ObjectMissing, StorageUnavailable
from common.rules.events import JOB_ID_KEY, REQUEST_ID_KEY

# A queue ARN in AWS's form: moto refuses MinIO's own (arn:minio:sqs::...) as not well formed.
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:ocr"


def settings_for(endpoint: str, secrets_dir: Path, bucket: str = "documents") -> Settings:
    """Adapter settings for an endpoint; an empty secrets folder, so no secret file of the host is read."""
    return load_settings({"MYSQL_PASSWORD": "unused", "S3_ACCESS_KEY": "moto-access", "S3_SECRET_KEY": "moto-secret",
                          "S3_ENDPOINT": endpoint, "S3_BUCKET": bucket, "SECRETS_DIR": str(secrets_dir)})


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """One moto S3 server on a free 127.0.0.1 port for the module's tests; each test makes its own bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def settings(moto_endpoint: str, tmp_path: Path) -> Settings:
    """Settings naming a fresh, empty bucket on the moto server."""
    settings = settings_for(moto_endpoint, tmp_path, bucket=f"t-{uuid.uuid4().hex[:16]}")
    storage.minio_client(settings).make_bucket(settings.s3_bucket)
    return settings


def store(settings: Settings, key: str, data: bytes, metadata: dict[str, str] | None = None) -> str:
    return storage.put_document(settings, key, io.BytesIO(data), len(data), "application/pdf", metadata or {})


def test_a_stored_original_downloads_byte_for_byte(settings: Settings, tmp_path: Path) -> None:
    """put_document stores the bytes and returns their ETag (a single part's MD5); download_to reads them back."""
    data = os.urandom(300_000)
    etag = store(settings, "uploads/d-1/scan.pdf", data)
    assert etag == hashlib.md5(data).hexdigest()
    target = tmp_path / "copy.pdf"
    storage.download_to(settings, settings.s3_bucket, "uploads/d-1/scan.pdf", target)
    assert target.read_bytes() == data


def test_upload_metadata_reads_back_by_its_own_names(settings: Settings) -> None:
    """stat_object returns the user metadata as upload wrote it: no x-amz-meta- prefix, no system headers."""
    metadata = {JOB_ID_KEY: "j-1", "document-id": "d-1", "lang": "deu+eng", REQUEST_ID_KEY: "r-1"}
    store(settings, "uploads/d-1/scan.pdf", b"%PDF-1.7", metadata)
    assert storage.stat_object(settings, settings.s3_bucket, "uploads/d-1/scan.pdf").metadata == metadata


def test_a_presigned_link_serves_the_object_over_plain_http(settings: Settings) -> None:
    """presigned_url signs locally; a client without credentials downloads the object with it."""
    key = f"results/{uuid.uuid4()}/searchable.pdf"  # links are reused per key, so a key of this test only
    store(settings, key, b"%PDF-1.7 searchable")
    with urllib.request.urlopen(storage.presigned_url(settings, key), timeout=10) as reply:
        assert reply.status == 200 and reply.read() == b"%PDF-1.7 searchable"


def test_remove_objects_deletes_the_keys_and_passes_over_absent_ones(settings: Settings) -> None:
    """A retried deletion goes through: keys already gone are no error."""
    store(settings, "uploads/d-1/a.pdf", b"a")
    store(settings, "uploads/d-1/b.pdf", b"b")
    storage.remove_objects(settings, settings.s3_bucket, ["uploads/d-1/a.pdf", "uploads/d-1/gone.pdf"])
    with pytest.raises(ObjectMissing):
        storage.stat_object(settings, settings.s3_bucket, "uploads/d-1/a.pdf")
    storage.stat_object(settings, settings.s3_bucket, "uploads/d-1/b.pdf")
    storage.remove_objects(settings, settings.s3_bucket, [])  # nothing to do, no request


def test_remove_prefix_deletes_one_jobs_results_only(settings: Settings) -> None:
    """Everything under the prefix goes, at any depth; a sibling prefix that shares its start stays."""
    for key in ("results/j-1/out.pdf", "results/j-1/pages/1.hocr", "results/j-10/out.pdf"):
        store(settings, key, b"x")
    storage.remove_prefix(settings, "results/j-1/")
    for key in ("results/j-1/out.pdf", "results/j-1/pages/1.hocr"):
        with pytest.raises(ObjectMissing):
            storage.stat_object(settings, settings.s3_bucket, key)
    storage.stat_object(settings, settings.s3_bucket, "results/j-10/out.pdf")


def test_ensure_bucket_routes_only_content_events_of_both_prefixes(moto_endpoint: str, tmp_path: Path) -> None:
    """The bucket is created, and inbox/ and uploads/ notify the queue of exactly the content events."""
    settings = settings_for(moto_endpoint, tmp_path, bucket=f"t-{uuid.uuid4().hex[:16]}")
    storage.ensure_bucket(settings, QUEUE_ARN)
    storage.ensure_bucket(settings, QUEUE_ARN)  # a second start finds the bucket and sets the same rules
    rules = storage.minio_client(settings).get_bucket_notification(settings.s3_bucket).queue_config_list
    assert {rule.prefix_filter_rule.value for rule in rules if rule.prefix_filter_rule} == {"inbox/", "uploads/"}
    assert all(rule.queue == QUEUE_ARN and tuple(rule.events) == storage.CREATED_EVENTS for rule in rules)


# --- faults --------------------------------------------------------------------------------------

Operation = Callable[[Settings, Path], object]
OPERATIONS: dict[str, Operation] = {
    "stat_object": lambda s, _tmp: storage.stat_object(s, s.s3_bucket, "uploads/d-1/scan.pdf"),
    "download_to": lambda s, tmp: storage.download_to(s, s.s3_bucket, "uploads/d-1/scan.pdf", tmp / "copy"),
    "put_document": lambda s, _tmp: store(s, "uploads/d-1/scan.pdf", b"%PDF-1.7"),
    "remove_prefix": lambda s, _tmp: storage.remove_prefix(s, "results/j-1/"),
}


@pytest.mark.parametrize("operation", ["stat_object", "download_to"])
def test_a_missing_object_is_object_missing(settings: Settings, tmp_path: Path, operation: str) -> None:
    """NoSuchKey becomes ObjectMissing (not retryable), never the client library's S3Error."""
    with pytest.raises(ObjectMissing) as info:
        OPERATIONS[operation](settings, tmp_path)
    assert not info.value.retryable


_LOCATION = (b'<?xml version="1.0" encoding="UTF-8"?>'
             b'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>')
_SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
              b"<Message>Please reduce your request rate.</Message></Error>")


class _SlowDown(BaseHTTPRequestHandler):
    """An S3 endpoint under throttling: it names its region, then answers every object request 503 SlowDown."""

    throttled: list[str]

    def _answer(self) -> None:
        # The client asks for the bucket's region first; answering it puts the 503 on the operation itself.
        location = self.command == "GET" and self.path.endswith("?location=")
        body = _LOCATION if location else _SLOW_DOWN
        if not location:
            self.throttled.append(f"{self.command} {self.path}")
        self.send_response(200 if location else 503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows the assertions, not an access log."""


@pytest.fixture
def throttled() -> Iterator[tuple[str, list[str]]]:
    """The endpoint of a throttling S3 server, and the object requests it refused."""
    refused: list[str] = []
    handler = type("SlowDown", (_SlowDown,), {"throttled": refused})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", refused
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_throttled_store_is_retried_then_storage_unavailable(throttled: tuple[str, list[str]], tmp_path: Path,
                                                                operation: str) -> None:
    """503 SlowDown is retried a few times, then becomes StorageUnavailable (retryable: the queue comes back)."""
    endpoint, refused = throttled
    with pytest.raises(StorageUnavailable) as info:
        OPERATIONS[operation](settings_for(endpoint, tmp_path), tmp_path)
    assert info.value.retryable
    assert len(refused) > 1, refused


@pytest.fixture(params=["refused", "reset"])
def unreachable(request: pytest.FixtureRequest) -> Iterator[str]:
    """An endpoint that refuses connections, or accepts them and resets them once the request arrived.

    Refused is a bound socket that never listens: a stopped moto server keeps its socket listening
    (ThreadedMotoServer.stop shuts the loop down without closing it), so a client would wait for
    its read timeout instead.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = None
    if request.param == "reset":
        sock.listen()

        def reset_each() -> None:
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return  # the fixture closed the socket
                conn.recv(65536)
                # Linger 0: close() sends RST instead of FIN, as a crashed or overloaded server would.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

        thread = threading.Thread(target=reset_each, daemon=True)
        thread.start()
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    if thread is not None:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() so the thread ends
    sock.close()
    if thread is not None:
        thread.join()


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_an_unreachable_store_is_storage_unavailable(unreachable: str, tmp_path: Path, operation: str) -> None:
    """A refused or reset connection is StorageUnavailable, never urllib3's or the socket's own error."""
    with pytest.raises(StorageUnavailable) as info:
        OPERATIONS[operation](settings_for(unreachable, tmp_path), tmp_path)
    assert info.value.retryable


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_an_outage_tells_the_client_nothing_internal(unreachable: str, tmp_path: Path, operation: str) -> None:
    """The message a client sees names no host, port, library or object key; the log's detail keeps them."""
    with pytest.raises(StorageUnavailable) as info:
        OPERATIONS[operation](settings_for(unreachable, tmp_path), tmp_path)
    message = info.value.message
    assert message == "the object store is unavailable; try again later"
    for internal in ("HTTPConnectionPool", unreachable.split(":")[1], "uploads/", "results/", "urllib3"):
        assert internal not in message
    assert info.value.detail and unreachable.split(":")[1] in info.value.detail


def test_a_missing_object_names_no_key_to_the_client(settings: Settings) -> None:
    """ObjectMissing says the object is gone; which key it was is the log's business."""
    with pytest.raises(ObjectMissing) as info:
        storage.stat_object(settings, settings.s3_bucket, "uploads/d-9/secret-name.pdf")
    assert "secret-name" not in info.value.message and "secret-name" in str(info.value)


def test_a_name_s3_refuses_is_no_object(settings: Settings) -> None:
    """A bucket name the client library refuses (an event's claim) is ObjectMissing, not a crash."""
    with pytest.raises(ObjectMissing):
        storage.stat_object(settings, "x" * 64, "inbox/a.png")
