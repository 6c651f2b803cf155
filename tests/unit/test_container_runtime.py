"""The container runtime's pure parts: what a function's container is given and how podman is called."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ocrstack import containers
from ocrstack.gateway.provider import (
    MAX_REPLICAS,
    SCALE_MAX,
    SCALE_MIN,
    ContainerFunction,
    FunctionProcess,
    FunctionSpec,
    Provider,
    replica_count,
)


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
    assert all(type(fn) is FunctionProcess for fn in processes.replicas())
    boxed = Provider(dict(specs), tmp_path, None, tmp_path / "logs", runtime="containers", stack="s1")
    assert isinstance(boxed.functions["with-image"].replicas[0], ContainerFunction)
    assert type(boxed.functions["no-image"].replicas[0]) is FunctionProcess
    with pytest.raises(ValueError):
        Provider(dict(specs), tmp_path, None, tmp_path / "logs", runtime="vm")


def test_scaling_labels_set_the_replicas_each_container_named_apart(tmp_path: Path) -> None:
    """com.openfaas.scale.min replicas, capped by com.openfaas.scale.max and the gateway's own limit."""
    assert replica_count({}) == 1
    assert replica_count({SCALE_MIN: "3"}) == 3
    assert replica_count({SCALE_MIN: "3", SCALE_MAX: "2"}) == 2
    assert replica_count({SCALE_MIN: "500"}) == MAX_REPLICAS
    assert replica_count({SCALE_MIN: "zero"}) == 1
    spec = FunctionSpec("ocr", tmp_path, image="ocr-pipeline/ocr:latest", labels={SCALE_MIN: "2"})
    boxed = Provider({"ocr": spec}, tmp_path, None, tmp_path / "logs", runtime="containers", stack="s1")
    names = [fn.container for fn in boxed.functions["ocr"].replicas if isinstance(fn, ContainerFunction)]
    assert names == ["ocr-ocr-s1", "ocr-ocr-r1-s1"]


def test_a_call_goes_to_the_least_busy_replica(tmp_path: Path) -> None:
    spec = FunctionSpec("ocr", tmp_path, labels={SCALE_MIN: "2"}, upstream=None)
    deployment = Provider({"ocr": spec}, tmp_path, None, tmp_path / "logs").functions["ocr"]
    with deployment.serving() as first:
        with deployment.serving() as second:
            assert first is not second
        with deployment.serving() as third:
            assert third is second  # the free one, not the next in turn


def test_the_docker_shim_builds_with_the_runtimes_build_options(tmp_path: Path) -> None:
    """faas-cli's `docker build` (the shim bootstrap-containers writes) passes what build_image passes, so both
    share podman's layer cache and their images carry the label pruning goes by; the wheelhouse is the named
    build context, found from the shim's own folder."""
    script = (Path(__file__).resolve().parents[2] / "local-stack" / "bootstrap-containers").read_text()
    shim = script[script.index('cat >"$shim.new.$$" <<EOF'):]
    shim = shim[:shim.index("\nEOF\n")]
    options = containers.build_options(tmp_path / "wheels")
    wheel_context = options[-2:]
    assert wheel_context == ["--build-context", f"wheelhouse={tmp_path / 'wheels'}"]
    assert "build --pull=never --format docker ${ulimits[*]}" in shim
    assert containers.ULIMITS == ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
    assert 'ulimits=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)' in script
    assert f"--label {containers.BUILD_LABEL}=local-stack" in shim and options[7:9] == [
        "--label", f"{containers.BUILD_LABEL}=local-stack"]
    assert '--build-context "wheelhouse=\\$(readlink -f "\\$cache/wheelhouse")"' in shim
    assert 'flock "\\$cache/images.lock"' in shim


def _image(image_id: str, parent: str = "", name: str = "", labels: dict[str, str] | None = None) -> dict[str, object]:
    return {"Id": image_id, "ParentId": parent, "Names": [name] if name else None, "Labels": labels or {}}


PROJECT = {containers.BUILD_LABEL: "local-stack"}
TEST = {**PROJECT, containers.STAGE_LABEL: "test"}


def test_stale_images_are_the_projects_leftovers_only() -> None:
    """Removed: a function image a rebuild replaced, the test stage of code since changed, a failed build's last
    layer. Kept: named images and what they are built on, the test stage the current image was built with (a
    rebuild of unchanged code reuses it), and every image without the project's label."""
    images = [
        _image("base", name="localhost/python:3.11-slim-bookworm"),
        # The current build: build stage b2 under the named ship image s2; its test stage t2a -> t2b.
        _image("b2", "base", labels=PROJECT),
        _image("s2", "b2", "localhost/ocr-pipeline/status:latest", PROJECT),
        _image("t2a", "b2", labels=TEST), _image("t2b", "t2a", labels=TEST),
        # The previous build of older code: its ship image lost the name, nothing is built on b1 any more.
        _image("b1", "base", labels=PROJECT),
        _image("s1", "b1", labels=PROJECT),
        _image("t1a", "b1", labels=TEST), _image("t1b", "t1a", labels=TEST),
        # A failed build's last layer.
        _image("f1", "b2", labels=PROJECT),
        # Somebody else's untagged image.
        _image("theirs", "base"),
    ]
    assert sorted(containers.stale_images(images)) == ["f1", "s1", "t1b"]
    # Once those are gone, the layers under them go in the next pass.
    rest = [i for i in images if i["Id"] not in ("f1", "s1", "t1b")]
    assert containers.stale_images(rest) == ["t1a"]
    rest = [i for i in rest if i["Id"] != "t1a"]
    assert containers.stale_images(rest) == ["b1"]


def test_only_working_containers_of_interrupted_project_builds_are_stale() -> None:
    """A build killed half-way leaves buildah's working container on its last layer (state "storage"): it is
    removed when that layer is one of the project's unnamed ones; a running container, a working container on
    somebody else's image or on a named image (another tool building FROM it) stays."""
    images = [_image("layer", "base", labels=PROJECT), _image("named", "layer", "localhost/ocr-pipeline/x:latest",
                                                                PROJECT), _image("base", name="localhost/python:3")]
    listed = [
        {"Id": "w1", "ImageID": "layer", "State": "storage"},
        {"Id": "w2", "ImageID": "base", "State": "storage"},
        {"Id": "w3", "ImageID": "named", "State": "storage"},
        {"Id": "r1", "ImageID": "layer", "State": "running"},
    ]
    assert containers.stale_build_containers(listed, images) == ["w1"]
