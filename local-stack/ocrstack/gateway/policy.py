"""What a deployment (faas-cli deploy: PUT or POST /system/functions) may ask of this gateway.

The gateway runs only code the stack file it was started with names: a deployment picks one of its
functions by name, and nothing in the request (envVars, envProcess, image, labels, annotations) can
point it at other code. A deployment may tune a function (limits, OCR, caches, log level, timeouts);
everything else, in particular the security settings (AUTH, RATE_LIMIT_*, INTERNAL_TOKEN, SECRETS_DIR,
TRUSTED_PROXIES, AUTH_CACHE_SECONDS, INBOX_OWNER), where the services are, and any variable that changes
what a process loads (PYTHONPATH, LD_PRELOAD, GUNICORN_CMD_ARGS, ...), it may only send with the value
the stack file gives it. A refused deployment changes nothing and is answered 400 with a JSON error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from common.config import setting_problems

# OpenFaaS's rule for function names (a DNS-1123 label): also what keeps a name from being a path.
FUNCTION_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
NAMESPACE = "openfaas-fn"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# The project's settings (common/config.py) a deployment may set to any value, and the watchdog's
# timeouts (the gateway applies exec_timeout): how much and how fast, never who may, what is logged or what runs.
TUNABLE = frozenset({
    "MAX_UPLOAD_BYTES", "MAX_PAGES", "MAX_PAGE_PIXELS", "OCR_CHUNK_PAGES", "OUTPUT_PDFA",
    "OCR_DPI", "OCR_PAGE_TIMEOUT", "OCR_WORKERS", "OCR_CLEAN_UP", "DEFAULT_LANG",
    "JOB_LEASE_SECONDS", "JOB_MAX_ATTEMPTS",
    "STATUS_CACHE", "STATUS_CACHE_TTL_ACTIVE", "STATUS_CACHE_TTL_FINAL", "REDIS_TIMEOUT",
    "read_timeout", "write_timeout", "exec_timeout",
})


class DeploymentRefused(Exception):
    """A deployment the gateway will not carry out: a stable code and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def function_name(raw: object) -> str:
    """The function a request names (`name` or faas-cli's `name.namespace`), checked like OpenFaaS does."""
    if not isinstance(raw, str) or not raw:
        raise DeploymentRefused("bad_request", "the request names no function")
    name, dot, namespace = raw.rpartition(".")
    if not dot:
        name, namespace = raw, ""
    if not FUNCTION_NAME.fullmatch(name):
        raise DeploymentRefused("bad_request", f"{raw!r} is not a function name (lower-case letters, digits and "
                                               "'-', at most 63 characters, then .openfaas-fn if at all)")
    check_namespace(namespace)
    return name


def check_namespace(namespace: object) -> None:
    if namespace not in (None, "", NAMESPACE):
        raise DeploymentRefused("namespace_unknown",
                                f"this gateway has one namespace, {NAMESPACE!r}; not {namespace!r}")


def string_map(body: Mapping[str, Any], field: str) -> dict[str, str]:
    """A JSON object of strings (envVars, labels, annotations); absent or null is empty."""
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise DeploymentRefused("bad_request", f"{field} must be a JSON object of strings")
    return dict(value)


def environment(requested: Mapping[str, str], declared: Mapping[str, str],
                stack_env: Mapping[str, str]) -> dict[str, str]:
    """The function's environment for a deployment: the stack file's, with the requested changes it allows.

    A variable is accepted when it has the stack file's value (so deploying the stack file itself always
    works), or when it is TUNABLE and the local stack does not set it for every function. A variable the
    request leaves out keeps the stack file's value: a deployment cannot drop a rate limit by omission.
    """
    refused = []
    for name, value in sorted(requested.items()):
        if not ENV_NAME.fullmatch(name):
            refused.append(f"{name!r} (not a variable name)")
        elif declared.get(name) == value:
            continue
        elif name in stack_env:
            refused.append(f"{name} (set by the local stack for every function)")
        elif name not in TUNABLE:
            where = (f"the stack file's value is {declared[name]!r}" if name in declared
                     else "the stack file does not set it")
            refused.append(f"{name} (only the stack file may set it; {where})")
    if refused:
        raise DeploymentRefused(
            "env_not_allowed",
            "a deployment may change only the functions' tunable settings (" + ", ".join(sorted(TUNABLE))
            + "); refused: " + "; ".join(refused) + ". Change the stack file instead, then deploy it.")
    return {**declared, **requested}


# The watchdog's timeouts are durations, which the settings reader does not know: checked here.
DURATIONS = frozenset({"read_timeout", "write_timeout", "exec_timeout"})


def check_settings(requested: Mapping[str, str], environment: Mapping[str, str],
                   parse_duration: Any) -> None:
    """A deployment's settings are read as the function reads them (common/config.py): a value the function
    would refuse at its first request (MAX_UPLOAD_BYTES=abc) refuses the deployment instead, naming it."""
    problems = setting_problems(environment)
    refused = [problems[name] for name in sorted(requested) if name in problems]
    for name in sorted(DURATIONS & set(requested)):
        try:
            parse_duration(requested[name], 0.0)
        except ValueError:
            refused.append(f"{name}={requested[name]!r} is not a duration (e.g. 60s, 10m, 1m30s)")
    if refused:
        raise DeploymentRefused("setting_invalid", "the deployment's settings would stop the function: "
                                + "; ".join(refused) + ". Nothing was changed.")


def check_image(requested: str, declared: str, name: str) -> None:
    """The gateway runs the stack file's code for a function, so an image can only be the one it names."""
    if requested and requested != declared:
        named = f"names {declared!r}" if declared else "names no image"
        raise DeploymentRefused(
            "image_not_allowed",
            f"this gateway runs {name} from the code the stack file names, not from an image: the image must be "
            f"the stack file's (it {named}), not {requested!r}")


def check_fprocess(requested: str, declared: str, name: str) -> None:
    """envProcess, if sent, must be the fprocess of the function's template (what faas-cli sends)."""
    if requested and requested != declared:
        expected = f"its template's {declared!r}" if declared else "empty (its template is unknown here)"
        raise DeploymentRefused(
            "fprocess_not_allowed",
            f"{name} runs its stack file's handler as its template says; envProcess must be {expected}, "
            f"not {requested!r}")
