"""The whole local stack: services, schema, bucket and notification rule, then the gateway with the functions."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.config import Settings
from ocrstack import containers
from ocrstack.services import (
    WEBHOOK_ARN,
    MariaDB,
    MinIO,
    Redis,
    Service,
    ServiceError,
    free_port,
    http_ok,
    port_open,
)


# How the gateway runs the functions: local processes (default) or their images under podman.
RUNTIMES = ("processes", "containers")


@dataclass(frozen=True)
class StackPorts:
    """The 127.0.0.1 ports of one stack; free() gives a set for tests that run beside a developer's stack."""

    gateway: int
    mysql: int
    redis: int
    minio: int
    minio_console: int

    @classmethod
    def default(cls) -> "StackPorts":
        return cls(gateway=8080, mysql=13306, redis=16379, minio=19000, minio_console=19001)

    @classmethod
    def free(cls) -> "StackPorts":
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read or write (0600), also when it existed with a wider mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


class Gateway(Service):
    """The local OpenFaaS-compatible gateway (ocrstack.gateway), which runs the functions as processes.

    Like OpenFaaS, its /system/* API (deploy, remove, logs, the queue) takes HTTP basic auth: user
    `admin` and the password LocalStack keeps in credentials.json, handed over in a 0600 file."""

    name = "gateway"
    user = "admin"

    def __init__(self, state_dir: Path, port: int, repo_root: Path, redis_url: str,
                 queue_workers: int | None = None, runtime: str = "processes") -> None:
        super().__init__(state_dir, port)
        self.repo_root = repo_root
        self.redis_url = redis_url
        self.queue_workers = queue_workers
        self.runtime = runtime
        # More gateway options, for a benchmark or test that compares settings (e.g. --queue-lanes "").
        self.extra_args: tuple[str, ...] = ()
        self.password_file = self.state_dir / "gateway" / "basic-auth-password"

    def command(self) -> list[str]:
        # Under a supervisor: a gateway that crashes is started again, and its functions die with it.
        args = [sys.executable, "-m", "ocrstack.supervise", "--",
                sys.executable, "-m", "ocrstack.gateway", "--host", "127.0.0.1", "--port", str(self.port),
                "--redis-url", self.redis_url, "--stack", str(self.repo_root / "stack.yml"),
                "--function-env", str(self.state_dir / "function-env.json"),
                "--state-dir", str(self.state_dir / "gateway"), "--repo-root", str(self.repo_root),
                "--basic-auth-user", self.user, "--basic-auth-password-file", str(self.password_file),
                # Callbacks to this machine: what the local stack's tests and a developer's listener use.
                "--callback-allowed-hosts", "127.0.0.1,::1,localhost"]
        if self.queue_workers is not None:
            args += ["--queue-workers", str(self.queue_workers)]
        if self.runtime == "containers":
            args += ["--runtime", "containers", "--stack-id", containers.stack_id(self.state_dir)]
        return args + list(self.extra_args)

    def ready(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port}/healthz")


class Retention(Service):
    """The scheduled retention run (`python -m common retention --every`), which deletes documents older
    than RETENTION_DAYS (with the default 0 it only logs that retention is off) and sweeps stalled jobs."""

    name = "retention"
    interval_seconds = 300

    def __init__(self, state_dir: Path, repo_root: Path, function_env: Callable[[], dict[str, str]]) -> None:
        super().__init__(state_dir, 0)
        self.repo_root = repo_root
        self.function_env = function_env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "common", "retention", "--every", str(self.interval_seconds)]

    def environment(self) -> dict[str, str]:
        return dict(os.environ, **self.function_env())

    def ready(self) -> bool:
        return True


class LocalStack:
    """MariaDB, Redis, MinIO and the gateway on private ports, all data and logs under one state folder."""

    def __init__(self, state_dir: Path, ports: StackPorts, repo_root: Path, runtime: str = "processes") -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.state_dir = Path(state_dir).resolve()
        self.ports = ports
        self.repo_root = Path(repo_root).resolve()
        self.runtime = runtime
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.credentials = self._credentials()
        self.mariadb = MariaDB(self.state_dir, ports.mysql, self.credentials["mysql_password"])
        self.redis = Redis(self.state_dir, ports.redis)
        self.minio = MinIO(self.state_dir, ports.minio, ports.minio_console, self.credentials["s3_access_key"],
                           self.credentials["s3_secret_key"], f"{self.gateway_url}/async-function/ocr-process",
                           self.credentials["internal_token"])
        self.gateway = Gateway(self.state_dir, ports.gateway, self.repo_root, self.redis.url, runtime=runtime)
        self.retention = Retention(self.state_dir, self.repo_root, self.function_env)

    def _credentials(self) -> dict[str, str]:
        """Generated once per state folder and kept beside the data (mode 0600), so a restart finds the same
        ones; a state folder from an older version gets the entries it lacks."""
        path = self.state_dir / "credentials.json"
        creds: dict[str, str] = dict(json.loads(path.read_text())) if path.exists() else {}
        wanted = {
            "mysql_password": lambda: secrets.token_urlsafe(18),
            "s3_access_key": lambda: "ocr" + secrets.token_hex(6),
            "s3_secret_key": lambda: secrets.token_urlsafe(24),
            "internal_token": lambda: secrets.token_urlsafe(32),
            # The gateway's /system/* password (user admin), for faas-cli login.
            "gateway_password": lambda: secrets.token_urlsafe(24),
        }
        missing = {name: make() for name, make in wanted.items() if name not in creds}
        if missing:
            creds.update(missing)
            self._write_credentials(creds)
        return creds

    def _write_credentials(self, creds: dict[str, str]) -> None:
        write_private(self.state_dir / "credentials.json", json.dumps(creds, indent=2))

    def ensure_admin_key(self, settings: Settings) -> None:
        """One admin key per state folder, made on the first start; its secret lives only in credentials.json."""
        from common.rules import apikeys

        if "admin_api_key" in self.credentials:
            return
        created = apikeys.create(settings, "local-stack admin", apikeys.Role.ADMIN)
        self.credentials.update(admin_api_key=created.token, admin_key_id=created.info.id)
        self._write_credentials(self.credentials)

    @property
    def admin_key(self) -> str:
        return self.credentials["admin_api_key"]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def gateway_auth(self) -> tuple[str, str]:
        """The user and password of the gateway's /system/* API (what `faas-cli login` takes)."""
        return self.gateway.user, self.credentials["gateway_password"]

    @property
    def s3_endpoint(self) -> str:
        return f"127.0.0.1:{self.ports.minio}"

    def function_env(self) -> dict[str, str]:
        """What every function process gets on top of stack.yml: where the services are, and the secrets."""
        return {
            "MYSQL_HOST": "127.0.0.1",
            "MYSQL_PORT": str(self.ports.mysql),
            "MYSQL_USER": self.mariadb.user,
            "MYSQL_PASSWORD": self.credentials["mysql_password"],
            "MYSQL_DATABASE": self.mariadb.database,
            "REDIS_URL": self.redis.url,
            "S3_ENDPOINT": self.s3_endpoint,
            "S3_ACCESS_KEY": self.credentials["s3_access_key"],
            "S3_SECRET_KEY": self.credentials["s3_secret_key"],
            "S3_SECURE": "false",
            "S3_BUCKET": "documents",
            "PUBLIC_URL": self.gateway_url,
            "GATEWAY_URL": self.gateway_url,
            # Local processes would otherwise look for secrets in the OpenFaaS mount point.
            "SECRETS_DIR": str(self.state_dir / "secrets"),
            "INTERNAL_TOKEN": self.credentials["internal_token"],
            # Files dropped straight under inbox/ belong to the stack's admin key; inbox/<key id>/ to that key.
            "INBOX_OWNER": self.credentials.get("admin_key_id", ""),
            # Completion webhooks may call receivers on this machine (the tests' own); elsewhere public only.
            "CALLBACK_ALLOWED_HOSTS": "127.0.0.1,::1,localhost",
        }

    def start(self) -> None:
        """Start what is not running yet, then schema, bucket and gateway; returns when all are ready."""
        started = time.monotonic()
        # Checked up front so a busy port fails before anything was started, naming every clash.
        busy = [f"127.0.0.1:{s.port} ({s.name})" for s in self._services() if not s.is_running() and port_open(s.port)]
        if busy:
            raise ServiceError("port already in use by another program: " + ", ".join(busy))
        for service in (self.mariadb, self.redis, self.minio):
            service.start()
            print(f"  {service.name:8} up on 127.0.0.1:{service.port}", flush=True)
        self.prepare_data()
        if self.runtime == "containers":
            self.build_images()
        self.start_gateway()
        print(f"  gateway  up on {self.gateway_url} ({time.monotonic() - started:.1f} s)", flush=True)
        self.retention.start()

    def prepare_data(self) -> None:
        """What `ocr-pipeline init` does (schema, bucket, notification rules; idempotent), then the admin key."""
        from common.adapters.db import dispose_engines
        from common.cli import initialise
        from common.config import load_settings
        from common.errors import PipelineError

        try:
            settings = load_settings(self.function_env())
            print(f"  schema   {initialise(settings, webhook_arn=WEBHOOK_ARN)}; bucket and rules set", flush=True)
            self.ensure_admin_key(settings)
            dispose_engines()
        except PipelineError as e:
            raise ServiceError(f"preparing the schema and the bucket failed: {e}") from e

    def function_images(self) -> dict[str, str]:
        """{function: image} of the stack file's functions that name an image."""
        from ocrstack.gateway.provider import load_stack

        return {name: spec.image for name, spec in load_stack(self.repo_root / "stack.yml").items() if spec.image}

    def build_images(self) -> list[containers.BuiltImage]:
        """The function images from the template (faas-cli build --shrinkwrap, podman build); cached layers make
        a rebuild of unchanged code take seconds. Needs `local-stack/bootstrap --containers` first."""
        started = time.monotonic()
        built = containers.build_function_images(self.repo_root, self.repo_root / "stack.yml", self.function_images(),
                                                 log_dir=self.state_dir / "logs")
        print(f"  images   {len(built)} built ({time.monotonic() - started:.1f} s)", flush=True)
        return built

    def _runtime_marker(self) -> Path:
        return self.state_dir / "gateway" / "runtime"

    def _ran_containers(self) -> bool:
        """Whether the last gateway of this state folder ran containers (so a plain `down` cleans them up too)."""
        try:
            return self._runtime_marker().read_text().strip() == "containers"
        except OSError:
            return False

    def start_gateway(self, queue_workers: int | None = None) -> None:
        self._runtime_marker().parent.mkdir(parents=True, exist_ok=True)
        self._runtime_marker().write_text(self.runtime + "\n")
        write_private(self.state_dir / "function-env.json", json.dumps(self.function_env(), indent=2))
        write_private(self.gateway.password_file, self.credentials["gateway_password"] + "\n")
        self.gateway.queue_workers = queue_workers
        self.gateway.start(timeout=90)

    def stop_gateway(self) -> None:
        self.gateway.stop()

    def _services(self) -> tuple[Service, ...]:
        return (self.mariadb, self.redis, self.minio, self.gateway, self.retention)

    def stop(self) -> None:
        """Stop in reverse order of start; parts already stopped are skipped."""
        errors = []
        for service in reversed(self._services()):
            try:
                service.stop()
            except (OSError, ServiceError) as e:
                errors.append(f"{service.name}: {e}")
            if service is self.gateway and (self.runtime == "containers" or self._ran_containers()):
                # The gateway stops its containers; any it could not (killed, crashed) go here.
                try:
                    containers.remove_stack_containers(containers.stack_id(self.state_dir))
                except (OSError, subprocess.SubprocessError, ServiceError) as e:
                    errors.append(f"containers: {e}")
        if errors:
            raise ServiceError("; ".join(errors))

    def status(self) -> dict[str, bool]:
        return {s.name: s.is_running() for s in self._services()}
