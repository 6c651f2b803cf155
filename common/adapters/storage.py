"""MinIO adapter: bucket set-up, storing originals, fetching objects; the only module that imports `minio`."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

from common import blocking
from common.config import Settings
from common.errors import ObjectMissing, StorageUnavailable

# Only object creation by content: s3:ObjectCreated:* would also fire on Put/DeleteTagging. The bucket
# rule subscribes to these and ocr-process acts on these alone, so both read this one tuple.
CREATED_EVENTS = (
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
)
# How S3 carries user metadata in headers and event records; callers see the names without it.
USER_METADATA_PREFIX = "x-amz-meta-"

_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchVersion"}

_clients: dict[str, Minio] = {}
_signers: dict[str, Minio] = {}
_links: dict[str, tuple[float, str]] = {}  # key -> (reuse until, signed link)


@dataclass(frozen=True)
class StoredObject:
    """What callers read of a stored object: its user metadata, names lower-cased and without the prefix."""

    metadata: dict[str, str]
    size: int = 0
    content_type: str = ""


def minio_client(settings: Settings) -> Minio:
    """One client per process and endpoint; short timeouts so an outage fails fast instead of hanging."""
    blocking.check("minio")
    client = _clients.get(settings.s3_endpoint)
    if client is None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            http_client=http,
        )
        _clients[settings.s3_endpoint] = client
    return client


def _translate(e: Exception, what: str) -> Exception:
    """Our error for a client failure; what was asked and the library's words (endpoint, key) go to `detail`,
    which only the logs show: a client learns the kind of failure, never our hosts or object keys."""
    detail = f"{what}: {e}"
    if isinstance(e, S3Error) and e.code in _MISSING_CODES:
        return ObjectMissing("the stored object does not exist (anymore)", detail=detail)
    return StorageUnavailable("the object store is unavailable; try again later", detail=detail)


def ensure_bucket(settings: Settings, webhook_arn: str) -> None:
    """Create the bucket and route object creation under the inbox and upload prefixes to the webhook."""
    client = minio_client(settings)
    try:
        if not client.bucket_exists(settings.s3_bucket):
            client.make_bucket(settings.s3_bucket)
        rules = [
            QueueConfig(events=list(CREATED_EVENTS), config_id=f"ocr-{name}",
                        prefix_filter_rule=PrefixFilterRule(prefix), queue=webhook_arn)
            for name, prefix in (("inbox", settings.inbox_prefix), ("uploads", settings.upload_prefix))
        ]
        client.set_bucket_notification(settings.s3_bucket, NotificationConfig(queue_config_list=rules))
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as e:
        raise _translate(e, f"bucket {settings.s3_bucket}") from e


def put_document(
    settings: Settings, key: str, data: BinaryIO, length: int, content_type: str, metadata: dict[str, str]
) -> str:
    """Store an original; returns its ETag. Metadata links the object to its document and job.

    One part in memory at a time (5 MiB, S3's smallest): the client's parallel multipart upload reads
    every part into an unbounded queue before its three threads drain it, so a 50 MB upload was held whole.
    """
    headers: dict[str, str | list[str] | tuple[str]] = dict(metadata)
    try:
        result = minio_client(settings).put_object(
            settings.s3_bucket, key, data, length, content_type=content_type, metadata=headers,
            num_parallel_uploads=1,
        )
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as e:
        raise _translate(e, f"storing {key}") from e
    return str(result.etag).strip('"')


def put_file(settings: Settings, key: str, path: Path, content_type: str) -> None:
    try:
        minio_client(settings).fput_object(settings.s3_bucket, key, str(path), content_type=content_type)
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as e:
        raise _translate(e, f"storing {key}") from e


def presigned_url(settings: Settings, key: str) -> str:
    """A GET link that expires after OUTPUT_URL_TTL; signing is local, no request is made.

    A link is reused for a tenth of its lifetime, so a reader always gets at least 90% of the TTL,
    while polling clients do not pay for a signature (a third of a cached status read) every time.
    """
    now = time.monotonic()
    cached = _links.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    url = _signer(settings).presigned_get_object(
        settings.s3_bucket, key, expires=timedelta(seconds=settings.output_url_ttl))
    if len(_links) > 10_000:
        _links.clear()
    _links[key] = (now + settings.output_url_ttl / 10, url)
    return url


def _signer(settings: Settings) -> Minio:
    client = _signers.get(settings.s3_public_endpoint)
    if client is None:
        # A fixed region: otherwise the client asks the server for the bucket's location first.
        client = Minio(settings.s3_public_endpoint, access_key=settings.s3_access_key,
                       secret_key=settings.s3_secret_key, secure=settings.s3_secure, region="us-east-1")
        _signers[settings.s3_public_endpoint] = client
    return client


@contextmanager
def _reading(bucket: str, key: str) -> Iterator[None]:
    """Our errors for a read of one object: a name the client refuses, or no such object, is ObjectMissing."""
    try:
        yield
    except ValueError as e:  # the client's own check of bucket and key names
        raise ObjectMissing("the stored object does not exist (anymore)", detail=f"{bucket}/{key}: {e}") from e
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as e:
        raise _translate(e, f"{bucket}/{key}") from e


def stat_object(settings: Settings, bucket: str, key: str) -> StoredObject:
    """The object's HEAD; ObjectMissing when it does not exist, or could not (a name S3 refuses)."""
    with _reading(bucket, key):
        info = minio_client(settings).stat_object(bucket, key)
    return StoredObject(metadata=user_metadata(info.metadata or {}), size=int(info.size or 0),
                        content_type=str(info.content_type or ""))


def user_metadata(headers: Mapping[str, object]) -> dict[str, str]:
    """User metadata out of headers or an event record's userMetadata: lower-case names, prefix dropped."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lowered = str(name).lower()
        if lowered.startswith(USER_METADATA_PREFIX):
            out[lowered[len(USER_METADATA_PREFIX):]] = str(value)
    return out


@dataclass(frozen=True)
class ObjectStream:
    """An object being read: its bytes as they arrive, and what its HEAD said of it."""

    chunks: Iterator[bytes]
    size: int
    content_type: str


# Read and passed on a piece at a time: a download never holds more of the object than this.
STREAM_CHUNK_BYTES = 64 * 1024


def open_object(settings: Settings, bucket: str, key: str) -> ObjectStream:
    """Start reading an object; its chunks come as the client iterates them, and the connection goes back
    to the pool once they are read (or the iteration is closed: a client that hung up)."""
    with _reading(bucket, key):
        response = minio_client(settings).get_object(bucket, key)

    def chunks() -> Iterator[bytes]:
        try:
            yield from response.stream(STREAM_CHUNK_BYTES)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            # The answer's head is sent by now: all that can be done is to end it short (the client sees
            # fewer bytes than Content-Length said) and say why in the log.
            raise _translate(e, f"reading {bucket}/{key}") from e
        finally:
            response.close()
            response.release_conn()

    return ObjectStream(chunks(), int(response.headers.get("Content-Length") or 0),
                        str(response.headers.get("Content-Type") or "application/octet-stream"))


def download_to(settings: Settings, bucket: str, key: str, path: Path) -> None:
    """Stream an object to a local file, never holding the whole document in memory."""
    try:
        minio_client(settings).fget_object(bucket, key, str(path))
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as e:
        raise _translate(e, f"{bucket}/{key}") from e


def remove_objects(settings: Settings, bucket: str, keys: list[str]) -> None:
    """Delete objects (absent ones are no error, so a retried deletion goes through)."""
    if not keys:
        return
    try:
        # The client sends the batch lazily: the errors must be iterated for the request to be made.
        errors = list(minio_client(settings).remove_objects(bucket, [DeleteObject(k) for k in keys]))
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as e:
        raise _translate(e, f"deleting from {bucket}") from e
    if errors:
        raise StorageUnavailable("stored objects could not be deleted; try again later",
                                 detail=f"deleting from {bucket}: {len(errors)} objects failed ({errors[0].code})")


def remove_prefix(settings: Settings, prefix: str) -> None:
    """Delete every object under a prefix of the bucket (a job's results)."""
    try:
        keys = [str(o.object_name) for o in
                minio_client(settings).list_objects(settings.s3_bucket, prefix=prefix, recursive=True)]
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as e:
        raise _translate(e, f"listing {prefix}") from e
    remove_objects(settings, settings.s3_bucket, keys)
