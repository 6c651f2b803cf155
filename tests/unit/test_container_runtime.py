"""The container runtime's pure parts: what a function's container is given and how podman is called."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ocrstack import containers
from ocrstack.gateway.provider import ContainerFunction, FunctionProcess, FunctionSpec, Provider


def test_host_services_are_reached_through_slirp4netns_host_loopback() -> None:
    env = containers.container_env({
        "MYSQL_HOST": "127.0.0.1", "REDIS_URL": "redis://127.0.0.1:16379/0", "S3_ENDPOINT": "127.0.0.1:19000",
        "GATEWAY_URL": "http://127.0.0.1:8080", "PUBLIC_URL": "http://127.0.0.1:8080", "SECRETS_DIR": "/x/secrets",
        "OCR_DPI": "300",
    })
    assert env == {
        "MYSQL_HOST": "10.0.2.2", "REDIS_URL": "redis://10.0.2.2:16379/0", "S3_ENDPOINT": "10.0.2.2:19000",
        "GATEWAY_URL": "http://10.0.2.2:8080",
        # What clients are told stays the host's address; a host path means nothing inside.
        "PUBLIC_URL": "http://127.0.0.1:8080", "OCR_DPI": "300",
    }


def test_run_command_publishes_on_loopback_only_with_this_machines_podman_settings(tmp_path: Path) -> None:
    argv = containers.run_command("status", "ocr-pipeline/status:latest", 41234, tmp_path / "env", "abcd1234")
    assert argv[:4] == ["podman", "--runtime", "runc", "run"]
    assert argv[-1] == "ocr-pipeline/status:latest"
    options = " ".join(argv)
    assert "--publish 127.0.0.1:41234:8080" in options
    assert "--network slirp4netns:allow_host_loopback=true" in options
    assert "--ulimit nofile=20000:20000 --ulimit nproc=32768:32768" in options
    assert "--no-healthcheck" in argv and "--rm" in argv
    assert "--name ocr-status-abcd1234" in options and "--label ocr-pipeline.stack=abcd1234" in options
    assert f"--env-file {tmp_path / 'env'}" in options


def test_env_file_is_private_and_refuses_values_it_cannot_carry(tmp_path: Path) -> None:
    path = tmp_path / "c" / "fn.env"
    containers.write_env_file(path, {"A": "1", "MYSQL_PASSWORD": "s3cr=et"})
    assert path.read_text() == "A=1\nMYSQL_PASSWORD=s3cr=et\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ValueError):
        containers.write_env_file(path, {"A": "two\nlines"})


def test_stack_ids_differ_per_state_folder(tmp_path: Path) -> None:
    assert containers.stack_id(tmp_path / "a") != containers.stack_id(tmp_path / "b")
    assert containers.stack_id(tmp_path / "a") == containers.stack_id(tmp_path / "a")


def test_provider_runs_images_as_containers_only_in_container_mode(tmp_path: Path) -> None:
    specs = {"with-image": FunctionSpec("with-image", tmp_path, image="ocr-pipeline/x:latest"),
             "no-image": FunctionSpec("no-image", tmp_path)}
    processes = Provider(dict(specs), tmp_path, None, tmp_path / "logs")
    assert all(type(fn) is FunctionProcess for fn in processes.functions.values())
    boxed = Provider(dict(specs), tmp_path, None, tmp_path / "logs", runtime="containers", stack="s1")
    assert isinstance(boxed.functions["with-image"], ContainerFunction)
    assert type(boxed.functions["no-image"]) is FunctionProcess
    with pytest.raises(ValueError):
        Provider(dict(specs), tmp_path, None, tmp_path / "logs", runtime="vm")
