"""Backing services as child processes on 127.0.0.1: MariaDB, Redis and MinIO, data under one state folder."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ocrstack.supervise import fresh_signals

# The bucket rule must name the webhook target configured below (target id OCR).
WEBHOOK_ARN = "arn:minio:sqs::OCR:webhook"


class ServiceError(RuntimeError):
    """A service would not start or stop; the message says which and quotes its log."""


def cache_dir() -> Path:
    """The bootstrap's cache outside the repository: $OCR_PIPELINE_CACHE, else ~/.cache/ocr-pipeline."""
    return Path(os.environ.get("OCR_PIPELINE_CACHE") or str(Path.home() / ".cache" / "ocr-pipeline"))


def tools_bin() -> Path:
    """Where the bootstrap puts the Go-built tools (MinIO, mc): a cache outside the repository."""
    return cache_dir() / "bin"


# The OpenFaaS programs the bootstrap provides: from PATH when installed, else built into the cache.
OPENFAAS_TOOLS = ("faas-cli", "fwatchdog")


def openfaas_tool(name: str) -> Path:
    """The `faas-cli` or `fwatchdog` to run: the one on PATH if any, else the one the bootstrap built into
    <cache>/openfaas (from ../shared/tools/openfaas); ServiceError naming both places if neither exists."""
    if name not in OPENFAAS_TOOLS:
        raise ValueError(f"not an OpenFaaS tool of the bootstrap: {name!r}")
    found = shutil.which(name)
    if found:
        return Path(found)
    built = cache_dir() / "openfaas" / name
    if built.is_file() and os.access(built, os.X_OK):
        return built
    raise ServiceError(f"{name} is neither on PATH nor in {built.parent}: run ./local-stack/bootstrap")


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick), for tests and parallel stacks."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str) -> bool:
    """Whether a GET of url answers 200 within a second (a readiness probe)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


class Service:
    """A child process with a pid file, so a later CLI call (or another process) can stop it."""

    name = "service"

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = Path(state_dir)
        self.port = port
        self.log_path = self.state_dir / "logs" / f"{self.name}.log"
        self.pid_path = self.state_dir / "run" / f"{self.name}.pid"

    # --- to override -------------------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        """Create data folders (and initialise them the first time)."""

    def ready(self) -> bool:
        return port_open(self.port)

    def after_start(self) -> None:
        """Work that needs the running service (users, databases)."""

    # --- lifecycle -----------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The running process of this service, or None (no pid file, process gone, or pid reused)."""
        try:
            fields = self.pid_path.read_text().split()
            pid = int(fields[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _alive(pid):
            return None
        # A pid file left over from before a reboot may name an unrelated process now: the start
        # time recorded beside the pid tells them apart, so stop() never signals a stranger.
        if len(fields) > 1 and fields[1] != _start_time(pid):
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, timeout: float = 60.0) -> None:
        if self.is_running():
            return
        if port_open(self.port):
            raise ServiceError(f"{self.name}: port 127.0.0.1:{self.port} is already in use by another program")
        for folder in (self.log_path.parent, self.pid_path.parent):
            folder.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(), cwd=self.state_dir, start_new_session=True, preexec_fn=fresh_signals,
            )
        self.pid_path.write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
        deadline = time.monotonic() + timeout
        while not self.ready():
            if proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with code {proc.returncode}; log {self.log_path}:\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"{self.name} was not ready after {timeout:g} s; log {self.log_path}:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)
        self.after_start()

    def stop(self, timeout: float = 20.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return
        # The whole process group: a service's own children go with it.
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_path.unlink(missing_ok=True)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    """Whether pid runs (reaping it first if it is our exited child, so it does not linger as a zombie)."""
    try:
        waited, _status = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by an earlier CLI call): fall back to a signal probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but belongs to another user
    return not _zombie(pid)


def _start_time(pid: int) -> str:
    """The process start time in clock ticks since boot (/proc/<pid>/stat field 22), "" if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[19] if len(rest) > 19 else ""


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, IndexError):
        return False


class MariaDB(Service):
    """A private MariaDB: own datadir, socket and port; root by socket only, the app user over TCP."""

    name = "mariadb"

    def __init__(self, state_dir: Path, port: int, password: str, user: str = "ocr", database: str = "ocr",
                 server_id: int = 1, binlog: bool = False) -> None:
        super().__init__(state_dir, port)
        self.user, self.password, self.database = user, password, database
        # A primary that replicas follow keeps a binary log; each server of a replication set has its own id.
        self.server_id, self.binlog = server_id, binlog
        self.datadir = self.state_dir / "mariadb"
        self.socket = self.state_dir / "run" / "mysqld.sock"

    def prepare(self) -> None:
        if (self.datadir / "mysql").is_dir():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if install is None:
            raise ServiceError("mariadb-install-db not found: run local-stack/bootstrap (Debian package mariadb-server)")
        with self.log_path.open("ab") as log:
            done = subprocess.run(
                [install, "--no-defaults", f"--datadir={self.datadir}", f"--user={getpass.getuser()}",
                 "--auth-root-authentication-method=socket", "--skip-test-db"],
                stdout=log, stderr=subprocess.STDOUT, check=False,
            )
        if done.returncode != 0:
            shutil.rmtree(self.datadir, ignore_errors=True)
            raise ServiceError(f"mariadb-install-db failed; log {self.log_path}:\n{self.log_tail()}")

    def command(self) -> list[str]:
        daemon = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        return [
            daemon, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.state_dir / 'run' / 'mariadbd.pid'}",
            f"--user={getpass.getuser()}", "--skip-name-resolve", f"--server-id={self.server_id}",
            *([f"--log-bin={self.datadir / 'binlog'}", "--binlog-format=ROW"] if self.binlog else ["--skip-log-bin"]),
            "--innodb-buffer-pool-size=128M", "--innodb-log-file-size=48M", "--max-connections=300",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
        ]

    def ready(self) -> bool:
        return self.socket.exists() and port_open(self.port)

    def after_start(self) -> None:
        self.root_sql(
            f"CREATE DATABASE IF NOT EXISTS `{self.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
            + "".join(
                f"CREATE USER IF NOT EXISTS '{self.user}'@'{host}' IDENTIFIED BY '{self.password}';"
                f"ALTER USER '{self.user}'@'{host}' IDENTIFIED BY '{self.password}';"
                f"GRANT ALL PRIVILEGES ON `{self.database}`.* TO '{self.user}'@'{host}';"
                for host in ("127.0.0.1", "localhost")
            )
            + "FLUSH PRIVILEGES;"
        )

    def root_sql(self, sql: str) -> None:
        """Run SQL as root over the private socket (root has no password, only socket auth)."""
        client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
        done = subprocess.run([client, "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", sql],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"mariadb: {done.stderr.strip()}")


class Redis(Service):
    """A private Redis with an append-only file, so queued invocations survive a restart."""

    name = "redis"

    def command(self) -> list[str]:
        data = self.state_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        # Append-only file: the gateway's queue must survive a restart of Redis too.
        return [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(data), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                "--protected-mode", "yes", "--daemonize", "no"]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ready(self) -> bool:
        # The port opens before the append-only file is loaded; until then commands get -LOADING.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False


class MinIO(Service):
    """A single-drive MinIO whose webhook target OCR points at the gateway, with an on-disk event queue."""

    name = "minio"

    def __init__(self, state_dir: Path, port: int, console_port: int, access_key: str, secret_key: str,
                 webhook_endpoint: str, webhook_token: str, binary: Path | None = None) -> None:
        super().__init__(state_dir, port)
        self.console_port = console_port
        self.access_key, self.secret_key = access_key, secret_key
        self.webhook_endpoint = webhook_endpoint
        self.webhook_token = webhook_token
        self.binary = binary or tools_bin() / "minio"

    def command(self) -> list[str]:
        if not self.binary.exists():
            raise ServiceError(f"{self.binary} not found: run local-stack/bootstrap (go install of MinIO)")
        data = self.state_dir / "minio" / "data"
        data.mkdir(parents=True, exist_ok=True)
        return [str(self.binary), "server", str(data), "--address", f"127.0.0.1:{self.port}",
                "--console-address", f"127.0.0.1:{self.console_port}", "--quiet", "--json"]

    def environment(self) -> dict[str, str]:
        events = self.state_dir / "minio" / "events"
        events.mkdir(parents=True, exist_ok=True)
        return dict(
            os.environ,
            MINIO_ROOT_USER=self.access_key,
            MINIO_ROOT_PASSWORD=self.secret_key,
            # Configured at start-up by environment: the endpoint need not be up yet, and with a
            # queue_dir undelivered events are written to disk and retried until it answers 2xx.
            MINIO_NOTIFY_WEBHOOK_ENABLE_OCR="on",
            MINIO_NOTIFY_WEBHOOK_ENDPOINT_OCR=self.webhook_endpoint,
            MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_OCR=str(events),
            MINIO_NOTIFY_WEBHOOK_QUEUE_LIMIT_OCR="100000",
            # Sent as `Authorization: Bearer <token>`: ocr-process refuses events without it.
            MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_OCR=self.webhook_token,
            MINIO_UPDATE="off",
            MINIO_BROWSER_REDIRECT="off",
        )

    def ready(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port}/minio/health/live")
