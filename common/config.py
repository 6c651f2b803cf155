"""Settings: one typed object built from the environment and OpenFaaS secret files, validated once."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from common.errors import ConfigError

T = TypeVar("T")

# OpenFaaS mounts each secret as a file here; outside OpenFaaS the env var of the same meaning is used.
DEFAULT_SECRETS_DIR = "/var/openfaas/secrets"


@dataclass(frozen=True)
class Settings:
    mysql_host: str
    mysql_port: int
    mysql_user: str
    mysql_password: str
    mysql_database: str
    redis_url: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_secure: bool
    s3_bucket: str
    s3_public_endpoint: str
    output_url_ttl: int
    inbox_prefix: str
    upload_prefix: str
    results_prefix: str
    max_upload_bytes: int
    max_pages: int
    ocr_chunk_pages: int
    max_page_pixels: int
    ocr_dpi: int
    ocr_page_timeout: float
    ocr_workers: int
    ocr_clean_up: bool
    output_pdfa: bool
    default_lang: str
    job_lease_seconds: int
    job_max_attempts: int
    public_url: str
    gateway_url: str
    log_level: str
    loop_threads: int
    redis_timeout: float
    status_cache: bool
    status_ttl_active: float
    status_ttl_final: float
    rate_limit_capacity: int
    rate_limit_refill_per_second: float
    rate_limit_fail_closed: bool
    trusted_proxies: tuple[str, ...]
    auth: bool
    auth_cache_seconds: float
    internal_token: str
    inbox_owner: str
    retention_days: int
    sweep_after_seconds: float
    db_auto_upgrade: bool
    # Completion webhooks (rules/webhooks.py): hosts or networks allowed although private or loopback.
    callback_allowed_hosts: tuple[str, ...] = ()
    callback_max_attempts: int = 5
    # Result links in a status answer: "api" (the documents function's downloads, authorised by the key)
    # or "presigned" (signed MinIO links, for deployments that publish MinIO at S3_PUBLIC_ENDPOINT).
    output_links: str = "api"
    # A MySQL read replica for list and status (adapters/db/sessions.read); empty host: every read on the primary.
    mysql_replica_host: str = ""
    mysql_replica_port: int = 3306
    mysql_replica_timeout: float = 1.0
    mysql_replica_retry_seconds: float = 30.0

    @property
    def database_url(self) -> str:
        return (
            f"mysql+pymysql://{self.mysql_user}:{self.mysql_password}"
            f"@{self.mysql_host}:{self.mysql_port}/{self.mysql_database}?charset=utf8mb4"
        )

    @property
    def replica_url(self) -> str | None:
        """The read replica, with the primary's user and database; None without MYSQL_REPLICA_HOST."""
        if not self.mysql_replica_host:
            return None
        return (
            f"mysql+pymysql://{self.mysql_user}:{self.mysql_password}"
            f"@{self.mysql_replica_host}:{self.mysql_replica_port}/{self.mysql_database}?charset=utf8mb4"
        )


class _EnvReader:
    """Reads typed values and collects every problem, so one start-up error names them all."""

    def __init__(self, env: Mapping[str, str], secrets_dir: Path) -> None:
        self.env = env
        self.secrets_dir = secrets_dir
        # (variable, what is wrong with it): one start-up error names them all, and a deployment's check
        # (the local gateway's) can tell which variable a problem is about.
        self.problems: list[tuple[str, str]] = []

    def text(self, name: str, default: str | None = None) -> str:
        value = self.env.get(name, default)
        if value is None or value == "":
            self.problems.append((name, f"{name} is required"))
            return ""
        return value

    def secret(self, env_name: str, secret_name: str, default: str | None = None) -> str:
        path = self.secrets_dir / secret_name
        if path.is_file():
            return path.read_text().strip()
        return self.text(env_name, default)

    def optional_secret(self, env_name: str, secret_name: str) -> str:
        path = self.secrets_dir / secret_name
        if path.is_file():
            return path.read_text().strip()
        return self.env.get(env_name, "").strip()

    def _typed(self, name: str, default: T, parse: Callable[[str], T], kind: str) -> T:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append((name, f"{name}={raw!r} is not {kind}"))
            return default

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self._typed(name, default, int, "an integer")
        if value < minimum:
            self.problems.append((name, f"{name}={value} must be at least {minimum}"))
        return value

    def number(self, name: str, default: float) -> float:
        value = self._typed(name, default, float, "a number")
        if value <= 0:
            self.problems.append((name, f"{name}={value} must be positive"))
        return value

    def networks(self, name: str, default: str) -> tuple[str, ...]:
        raw = self.env.get(name) or default
        out: list[str] = []
        for part in (p.strip() for p in raw.split(",")):
            if not part:
                continue
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                self.problems.append((name, f"{name}: {part!r} is not an IP address or network"))
                continue
            out.append(part)
        return tuple(out)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.env.get(name) or default).strip().lower()
        if value not in choices:
            self.problems.append((name, f"{name}={value!r} is not one of {', '.join(choices)}"))
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)

        return self._typed(name, default, parse, "a boolean (true/false)")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build and validate settings; raises ConfigError naming every missing or malformed variable."""
    settings, problems = _read(os.environ if env is None else env)
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(text for _name, text in problems))
    return settings


def setting_problems(env: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with each variable of `env` the settings reader refuses, by variable name (empty: none)."""
    _settings, problems = _read(env)
    found: dict[str, str] = {}
    for name, text in problems:
        found[name] = f"{found[name]}; {text}" if name in found else text
    return found


def _read(env: Mapping[str, str]) -> tuple[Settings, list[tuple[str, str]]]:
    r = _EnvReader(env, Path(env.get("SECRETS_DIR", DEFAULT_SECRETS_DIR)))
    mysql_port = r.integer("MYSQL_PORT", 3306, minimum=1)
    settings = Settings(
        mysql_host=r.text("MYSQL_HOST", "127.0.0.1"),
        mysql_port=mysql_port,
        mysql_user=r.text("MYSQL_USER", "ocr"),
        mysql_password=r.secret("MYSQL_PASSWORD", "mysql-password"),
        mysql_database=r.text("MYSQL_DATABASE", "ocr"),
        redis_url=r.text("REDIS_URL", "redis://127.0.0.1:6379/0"),
        s3_endpoint=r.text("S3_ENDPOINT", "127.0.0.1:9000"),
        s3_access_key=r.secret("S3_ACCESS_KEY", "s3-access-key"),
        s3_secret_key=r.secret("S3_SECRET_KEY", "s3-secret-key"),
        s3_secure=r.flag("S3_SECURE", False),
        s3_bucket=r.text("S3_BUCKET", "documents"),
        # Download links are signed for the host the client uses, which may differ from the functions' one.
        s3_public_endpoint=r.text("S3_PUBLIC_ENDPOINT", env.get("S3_ENDPOINT") or "127.0.0.1:9000"),
        output_url_ttl=r.integer("OUTPUT_URL_TTL", 3600, minimum=60),
        inbox_prefix=r.text("INBOX_PREFIX", "inbox/"),
        upload_prefix=r.text("UPLOAD_PREFIX", "uploads/"),
        results_prefix=r.text("RESULTS_PREFIX", "results/"),
        max_upload_bytes=r.integer("MAX_UPLOAD_BYTES", 50 * 1024 * 1024, minimum=1),
        max_pages=r.integer("MAX_PAGES", 2000, minimum=1),
        # A PDF with more pages is split into runs of this many, each OCRed by an invocation of its own, so
        # no invocation outgrows exec_timeout and replicas share a document (0: never split).
        ocr_chunk_pages=r.integer("OCR_CHUNK_PAGES", 8, minimum=0),
        max_page_pixels=r.integer("MAX_PAGE_PIXELS", 100_000_000, minimum=1),
        ocr_dpi=r.integer("OCR_DPI", 300, minimum=72),
        ocr_page_timeout=r.number("OCR_PAGE_TIMEOUT", 120.0),
        ocr_workers=r.integer("OCR_WORKERS", os.cpu_count() or 1, minimum=1),
        # Median filter + autocontrast before OCR: fixes speckled, washed-out scans (error rate 0.0052 -> 0 in
        # bench/engine_bench.py) but costs about a fifth of a page's time and changes nothing on clean scans.
        ocr_clean_up=r.flag("OCR_CLEAN_UP", False),
        # The searchable PDF as PDF/A-2b (archives ask for it); a document that cannot be one stays plain.
        output_pdfa=r.flag("OUTPUT_PDFA", False),
        default_lang=r.text("DEFAULT_LANG", "auto"),
        job_lease_seconds=r.integer("JOB_LEASE_SECONDS", 30, minimum=3),
        job_max_attempts=r.integer("JOB_MAX_ATTEMPTS", 3, minimum=1),
        public_url=env.get("PUBLIC_URL", "").rstrip("/"),
        # Where upload hands a new job straight to ocr-process; empty: only the bucket notification does.
        gateway_url=env.get("GATEWAY_URL", "").rstrip("/"),
        log_level=r.text("LOG_LEVEL", "INFO"),
        # On the event loop (FUNCTION_USE_ASGI), the threads per process for reads that wait on MySQL. More
        # only queue for the interpreter lock: 2 to 4 gave the status MySQL path its best figures here.
        loop_threads=r.integer("LOOP_THREADS", 4, minimum=1),
        redis_timeout=r.number("REDIS_TIMEOUT", 0.25),
        status_cache=r.flag("STATUS_CACHE", True),
        # In-flight entries are replaced on every change anyway; the TTL only bounds a lost marker write.
        status_ttl_active=r.number("STATUS_CACHE_TTL_ACTIVE", 10.0),
        status_ttl_final=r.number("STATUS_CACHE_TTL_FINAL", 86400.0),
        rate_limit_capacity=r.integer("RATE_LIMIT_CAPACITY", 0),
        rate_limit_refill_per_second=r.number("RATE_LIMIT_REFILL_PER_SECOND", 1.0),
        rate_limit_fail_closed=r.flag("RATE_LIMIT_FAIL_CLOSED", False),
        trusted_proxies=r.networks("TRUSTED_PROXIES", "127.0.0.1/32,::1/128"),
        # API keys on upload, status, list and documents; off only for a trusted private network.
        auth=r.flag("AUTH", True),
        # How long a key's record is trusted from Redis: the bound on how late a revocation can take effect.
        auth_cache_seconds=r.number("AUTH_CACHE_SECONDS", 30.0),
        # Shared by MinIO's webhook target, upload's hand-off and ocr-process; only ocr-process requires it.
        internal_token=r.optional_secret("INTERNAL_TOKEN", "internal-token"),
        # The key id that owns files dropped under the inbox outside any inbox/<key id>/ folder.
        inbox_owner=env.get("INBOX_OWNER", "").strip(),
        retention_days=r.integer("RETENTION_DAYS", 0),
        # An unfinished job nothing touched for this long is settled by the scheduled sweep (rules/sweep.py):
        # well past the upload's exec_timeout and the queue's longest retry delay.
        sweep_after_seconds=r.number("SWEEP_AFTER_SECONDS", 600.0),
        # A database behind the code: upgraded on a process's first use, or (false) refused until `init` ran.
        db_auto_upgrade=r.flag("DB_AUTO_UPGRADE", False),
        # Names or networks (127.0.0.1, 10.0.0.0/8, receiver.internal) a callback_url may reach although they
        # are not public addresses; empty: public addresses only, so an upload cannot aim ocr-process inward.
        callback_allowed_hosts=tuple(h.strip() for h in env.get("CALLBACK_ALLOWED_HOSTS", "").split(",")
                                     if h.strip()),
        callback_max_attempts=r.integer("CALLBACK_MAX_ATTEMPTS", 5, minimum=1),
        output_links=r.choice("OUTPUT_LINKS", "api", ("api", "presigned")),
        # A read replica of MYSQL_HOST (same user, password and database) that list and status read from once it
        # has applied every write the primary had when the read began; lagging past MYSQL_REPLICA_TIMEOUT or
        # down, the primary answers, and a replica that failed is left alone for MYSQL_REPLICA_RETRY_SECONDS.
        mysql_replica_host=env.get("MYSQL_REPLICA_HOST", "").strip(),
        mysql_replica_port=r.integer("MYSQL_REPLICA_PORT", mysql_port, minimum=1),
        mysql_replica_timeout=r.number("MYSQL_REPLICA_TIMEOUT", 1.0),
        mysql_replica_retry_seconds=r.number("MYSQL_REPLICA_RETRY_SECONDS", 30.0),
    )
    if settings.mysql_replica_timeout <= 0:
        r.problems.append(("MYSQL_REPLICA_TIMEOUT", "MYSQL_REPLICA_TIMEOUT must be more than 0 seconds, got "
                                                    f"{settings.mysql_replica_timeout}"))
    return settings, r.problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once on first use (never at import time)."""
    return load_settings()
