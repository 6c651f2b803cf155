"""The OpenFaaS tier's fixture: MariaDB, Redis and MinIO for the faasd that local-stack/openfaas-tier started, and
stack.yml deployed on it with the real faas-cli.

It runs inside the tier's private network namespace: the services listen on its loopback, and the functions on
faasd's bridge reach them at the bridge address, which DNAT sends to loopback (route_localnet, set by the script).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import Settings, load_settings
from common.rules import apikeys
from ocrstack.services import MariaDB, MinIO, Redis, free_port, openfaas_tool
from tests.conftest import REPO_ROOT
from tests.support import Gateway, wait_until

FUNCTIONS = sorted(yaml.safe_load((REPO_ROOT / "stack.yml").read_text())["functions"])
# Deploy-time settings of the tier on top of stack.yml (which stays as it is): chunks of two pages, so a
# three-page PDF is read in two invocations; a ten-second lease, so a killed worker's job is free again soon.
OCR_CHUNK_PAGES = 2
JOB_LEASE_SECONDS = 10


@dataclass
class Tier:
    """The running tier: where the gateway is, the services' settings as this process and as a function sees them."""

    gateway_url: str
    password: str
    settings: Settings
    local_env: dict[str, str]
    function_env: dict[str, str]
    admin_key: str
    home: Path

    def faas_cli(self, *args: str, input: bytes = b"", timeout: float = 180,
                 ok: bool = True) -> subprocess.CompletedProcess[bytes]:
        """The real faas-cli against faasd's gateway, with a config folder of its own (its login stays there)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENFAAS_") and k != "CI"}
        env.update(HOME=str(self.home), OPENFAAS_CONFIG=str(self.home / ".openfaas"), NO_COLOR="1")
        done = subprocess.run([str(openfaas_tool("faas-cli")), *args, "--gateway", self.gateway_url], cwd=REPO_ROOT,
                              env=env, input=input, capture_output=True, timeout=timeout, check=False)
        if ok:
            assert done.returncode == 0, f"faas-cli {' '.join(args)}: {done.stdout!r} {done.stderr!r}"
        return done

    def admin(self) -> Gateway:
        return Gateway(self.gateway_url, api_key=self.admin_key)


def _figure(line: str) -> None:
    """A measured figure, printed by local-stack/openfaas-tier at the end of its run."""
    logs = os.environ.get("OPENFAAS_TIER_LOGS")
    if logs:
        with open(Path(logs) / "figures.txt", "a") as out:
            out.write(line + "\n")


def _environment(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: the OpenFaaS tier runs inside ./local-stack/openfaas-tier, which starts faasd "
                    "and sets it (see docs/DEPLOYING.md, 'The OpenFaaS test tier')")
    return value


def _dnat(action: str, bridge: str, port: int) -> None:
    """Add (-A) or delete (-D) the rule that sends the bridge address's port to the same port on loopback."""
    subprocess.run(["iptables", "-t", "nat", action, "PREROUTING", "-d", bridge, "-p", "tcp", "--dport", str(port),
                    "-j", "DNAT", "--to-destination", f"127.0.0.1:{port}"], check=True, capture_output=True)


def _answers(gateway: Gateway, function: str) -> bool:
    """Whether the function itself answers through the gateway: faasd says ready about 3 s before it does, and
    until then the gateway (502, 503) or the watchdog, whose upstream is not listening yet (500), answer instead."""
    path = "/function/ui/" if function == "ui" else f"/function/{function}"
    return gateway.request("GET", path).status < 500


@pytest.fixture(scope="session")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    """The services started, the schema made, an admin key, the secrets created and stack.yml deployed."""
    gateway_url = _environment("OPENFAAS_TIER_GATEWAY")
    bridge = _environment("OPENFAAS_TIER_BRIDGE")
    password = Path(_environment("OPENFAAS_TIER_PASSWORD_FILE")).read_text().strip()
    state = tmp_path_factory.mktemp("openfaas-tier")
    credentials = {name: secrets.token_hex(16) for name in ("mysql-password", "s3-access-key", "s3-secret-key")}
    credentials["internal-token"] = secrets.token_hex(32)
    ports = {"mysql": free_port(), "redis": free_port(), "minio": free_port()}
    mariadb = MariaDB(state, ports["mysql"], credentials["mysql-password"])
    redis = Redis(state, ports["redis"])
    # MinIO's webhook goes to faasd's gateway on this namespace's loopback (faasd's proxy of the gateway's port).
    minio = MinIO(state, ports["minio"], free_port(), credentials["s3-access-key"], credentials["s3-secret-key"],
                  f"{gateway_url}/async-function/ocr-process", credentials["internal-token"])
    started: list[Any] = []
    rules: list[int] = []
    try:
        for service in (mariadb, redis, minio):
            service.start()
            started.append(service)
        # Functions connect from the bridge (10.62.x.y): the app user is granted to that network too.
        subnet = bridge.rsplit(".", 2)[0] + ".%"
        mariadb.root_sql(f"CREATE USER IF NOT EXISTS '{mariadb.user}'@'{subnet}' IDENTIFIED BY '{mariadb.password}';"
                         f"GRANT ALL PRIVILEGES ON `{mariadb.database}`.* TO '{mariadb.user}'@'{subnet}';"
                         "FLUSH PRIVILEGES;")
        # Redis refuses clients from other addresses than loopback while it has no password (protected mode), and
        # DNAT keeps the functions' bridge addresses: it is turned off from loopback, as Redis itself advises. Only
        # the bridge of this private namespace reaches the port.
        with socket.create_connection(("127.0.0.1", ports["redis"]), timeout=5) as conn:
            conn.sendall(b"CONFIG SET protected-mode no\r\n")
            assert conn.recv(64).startswith(b"+OK")
        for port in ports.values():
            _dnat("-A", bridge, port)
            rules.append(port)

        common = {"MYSQL_PORT": str(ports["mysql"]), "MYSQL_USER": mariadb.user, "MYSQL_DATABASE": mariadb.database,
                  "S3_SECURE": "false", "S3_BUCKET": "documents", "PUBLIC_URL": gateway_url}
        local_env = {**common, "MYSQL_HOST": "127.0.0.1", "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
                     "S3_ENDPOINT": f"127.0.0.1:{ports['minio']}", "GATEWAY_URL": gateway_url,
                     "MYSQL_PASSWORD": credentials["mysql-password"], "S3_ACCESS_KEY": credentials["s3-access-key"],
                     "S3_SECRET_KEY": credentials["s3-secret-key"], "INTERNAL_TOKEN": credentials["internal-token"],
                     "SECRETS_DIR": str(state / "no-secrets")}
        subprocess.run([sys.executable, "-m", "common", "init"], env={**os.environ, **local_env}, check=True,
                       capture_output=True, timeout=120)
        settings = load_settings(local_env)
        admin = apikeys.create(settings, "openfaas-tier", apikeys.Role.ADMIN)
        # What the functions get on faasd (docs/DEPLOYING.md step 2): the services at the bridge address, the
        # gateway by its faasd name, the bridge as the trusted proxies; the secrets as OpenFaaS secrets.
        function_env = {**common, "MYSQL_HOST": bridge, "REDIS_URL": f"redis://{bridge}:{ports['redis']}/0",
                        "S3_ENDPOINT": f"{bridge}:{ports['minio']}", "GATEWAY_URL": "http://gateway:8080",
                        "TRUSTED_PROXIES": bridge.rsplit(".", 2)[0] + ".0.0/16", "INBOX_OWNER": admin.info.id,
                        "OCR_CHUNK_PAGES": str(OCR_CHUNK_PAGES), "JOB_LEASE_SECONDS": str(JOB_LEASE_SECONDS)}
        tier = Tier(gateway_url, password, settings, local_env, function_env, admin.token, state / "faas-cli")
        tier.faas_cli("login", "--username", "admin", "--password-stdin", input=password.encode())
        for name, value in credentials.items():
            tier.faas_cli("secret", "create", name, input=value.encode())
        started_at = time.monotonic()
        tier.faas_cli("deploy", "-f", "stack.yml", *[a for k, v in function_env.items() for a in ("--env", f"{k}={v}")])
        deployed_at = time.monotonic()
        probe = Gateway(gateway_url)
        for function in FUNCTIONS:
            wait_until(lambda: _answers(probe, function), 120, interval=0.2, what=f"{function} to answer on faasd")
        _figure(f"faas-cli deploy of {len(FUNCTIONS)} functions: {deployed_at - started_at:.1f} s, then until each "
                f"answers: {time.monotonic() - deployed_at:.1f} s")
        yield tier
    finally:
        # The functions are left to the script, which kills every task of faasd's containerd next: faas-cli remove
        # would wait the watchdog's 5 s drain for each function in turn, half a minute for nothing.
        for port in rules:
            _dnat("-D", bridge, port)
        for service in reversed(started):
            service.stop()
