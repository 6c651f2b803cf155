"""The backing-service processes of local-stack: MariaDB, Redis and MinIO start, serve, restart and stop cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest
import redis
from minio import Minio
from minio.notificationconfig import NotificationConfig, QueueConfig

from ocrstack.services import WEBHOOK_ARN, MariaDB, MinIO, Redis, Service, ServiceError, free_port, tools_bin

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MYSQL_PASSWORD = "test-password"
S3_ACCESS_KEY, S3_SECRET_KEY = "ocrtestkey", "ocr-test-secret-key"


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains text: how we prove a state folder has no process left."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # the process ended while we looked
    return found


def _started(request: pytest.FixtureRequest, service: Service) -> Service:
    """Start a service and register its stop, so a failing test never leaves a process behind."""
    request.addfinalizer(service.stop)
    service.start()
    return service


def _minio(state_dir: Path) -> MinIO:
    if not (tools_bin() / "minio").exists():
        pytest.skip(f"MinIO is not built at {tools_bin() / 'minio'}: run local-stack/bootstrap")
    # Nothing listens on the webhook endpoint: configured by environment, the target must not need it.
    return MinIO(state_dir, free_port(), free_port(), S3_ACCESS_KEY, S3_SECRET_KEY,
                 webhook_endpoint=f"http://127.0.0.1:{free_port()}/async-function/ocr-process",
                 webhook_token="unused-token")


@pytest.fixture(scope="module")
def mariadb(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> MariaDB:
    """A private MariaDB with the app user, shared by this module's tests."""
    service = MariaDB(tmp_path_factory.mktemp("mariadb"), free_port(), password=MYSQL_PASSWORD)
    return _started(request, service)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def redis_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Redis:
    """A private Redis, shared by this module's tests."""
    return _started(request, Redis(tmp_path_factory.mktemp("redis"), free_port()))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def minio_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> MinIO:
    """A private MinIO with the OCR webhook target, shared by this module's tests."""
    return _started(request, _minio(tmp_path_factory.mktemp("minio")))  # type: ignore[return-value]


def _mysql(service: MariaDB) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    return pymysql.connect(host="127.0.0.1", port=service.port, user=service.user, password=MYSQL_PASSWORD,
                           database=service.database, autocommit=True, connect_timeout=5)


def _s3(service: MinIO) -> Minio:
    return Minio(f"127.0.0.1:{service.port}", access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY, secure=False)


def test_mariadb_app_user_connects_over_tcp(mariadb: MariaDB) -> None:
    """The ocr user logs in to its database on 127.0.0.1 with the password given to MariaDB()."""
    with _mysql(mariadb) as conn, conn.cursor() as cur:
        cur.execute("SELECT DATABASE(), CURRENT_USER()")
        assert cur.fetchone() == ("ocr", "ocr@127.0.0.1")


def test_mariadb_data_survives_restart(mariadb: MariaDB) -> None:
    """Rows written before stop() are there after start() on the same datadir, and the user still works."""
    with _mysql(mariadb) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS kept (v VARCHAR(20))")
        cur.execute("INSERT INTO kept VALUES ('before-restart')")
    mariadb.stop()
    assert not mariadb.is_running()
    mariadb.start()
    with _mysql(mariadb) as conn, conn.cursor() as cur:
        cur.execute("SELECT v FROM kept")
        assert cur.fetchall() == (("before-restart",),)


def test_redis_answers_ping_and_keeps_data_across_restart(redis_server: Redis) -> None:
    """Redis answers on its URL, and the append-only file brings keys back after a restart."""
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping()
    client.set("kept", "before-restart")
    client.close()
    redis_server.stop()
    redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    assert client.get("kept") == b"before-restart"
    client.close()


def test_minio_serves_s3_and_accepts_the_webhook_rule(minio_server: MinIO) -> None:
    """MinIO answers S3 calls with the root credentials and knows the OCR webhook target by WEBHOOK_ARN."""
    s3 = _s3(minio_server)
    s3.make_bucket("documents")
    assert [b.name for b in s3.list_buckets()] == ["documents"]
    # MinIO rejects a rule naming an ARN it has no target for, so this proves the env configuration.
    rule = QueueConfig(["s3:ObjectCreated:Put"], config_id="ocr", queue=WEBHOOK_ARN)
    s3.set_bucket_notification("documents", NotificationConfig(queue_config_list=[rule]))
    assert s3.get_bucket_notification("documents").queue_config_list[0].queue == WEBHOOK_ARN


def test_stop_from_another_process_ends_the_service(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A second process (like `ocrstack down`) stops a service through its pid file alone."""
    service = _started(request, Redis(tmp_path, free_port()))
    pid = service.pid()
    assert pid is not None
    code = "import sys; from pathlib import Path; from ocrstack.services import Redis; " \
           "Redis(Path(sys.argv[1]), int(sys.argv[2])).stop()"
    subprocess.run([sys.executable, "-c", code, str(tmp_path), str(service.port)], check=True, timeout=60)
    assert not service.is_running()
    assert _processes_mentioning(str(tmp_path)) == []


def test_stale_pid_file_is_not_taken_for_a_running_service(tmp_path: Path) -> None:
    """A pid file whose pid now belongs to another process (start time differs) counts as not running."""
    service = Redis(tmp_path, free_port())
    service.pid_path.parent.mkdir(parents=True)
    service.pid_path.write_text(f"{os.getpid()} 1\n")  # our own pid, with a start time that is not ours
    assert not service.is_running()
    service.stop()  # must not signal this test process
    assert not service.pid_path.exists()


def test_start_on_a_busy_port_names_the_service_and_port(tmp_path: Path) -> None:
    """Starting on a port another program holds fails at once with a message naming both."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ServiceError, match=rf"redis: port 127\.0\.0\.1:{port} is already in use"):
            Redis(tmp_path, port).start()
    assert not Redis(tmp_path, port).is_running()


def test_start_failure_quotes_the_service_log(tmp_path: Path) -> None:
    """A service that exits during start-up raises an error quoting the tail of its own log."""

    class BrokenRedis(Redis):
        def command(self) -> list[str]:
            return [*super().command(), "--no-such-directive", "yes"]

    with pytest.raises(ServiceError, match="(?s)redis exited with code.*no-such-directive"):
        BrokenRedis(tmp_path, free_port()).start(timeout=30)


def test_all_three_services_stop_without_leaving_a_process(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """After stop(), no process whose command line names the state folder is left."""
    services = [
        MariaDB(tmp_path, free_port(), password=MYSQL_PASSWORD),
        Redis(tmp_path, free_port()),
        _minio(tmp_path),
    ]
    for service in services:
        _started(request, service)
    assert all(s.is_running() for s in services)
    assert _processes_mentioning(str(tmp_path))
    for service in services:
        service.stop()
    assert not any(s.is_running() for s in services)
    assert _processes_mentioning(str(tmp_path)) == []
