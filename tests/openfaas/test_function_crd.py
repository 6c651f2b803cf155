"""deploy/openfaas/functions.yml against the Function CRD of the user's own faas-netes clone (opt-in tier).

faas-netes is under the OpenFaaS CE EULA, so its CRD is read from the clone the user names, never kept here.
A CRD's structural schema prunes unknown fields instead of refusing them: a misspelt key would vanish silently,
so every key of each resource must also be one the schema names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.openfaas

FAAS_NETES_TAG = "0.18.17"
CRD = Path("artifacts") / "crds" / "openfaas.com_functions.yaml"


def function_schema() -> dict[str, Any]:
    sources = os.environ.get("OPENFAAS_SOURCES", "")
    path = Path(sources) / "faas-netes" / CRD
    assert sources and path.is_file(), (
        f"the Function CRD is read from your faas-netes clone: git clone --branch {FAAS_NETES_TAG} "
        f"https://github.com/openfaas/faas-netes into $OPENFAAS_SOURCES (docs/DEPLOYING.md)")
    crd = yaml.safe_load(path.read_text())
    [served] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
    return schema


def unknown_keys(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Keys of `value` its schema does not name (free-form maps, `additionalProperties`, are not followed)."""
    found: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{where}.{key}")
            else:
                found += unknown_keys(item, schema["properties"][key], f"{where}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            found += unknown_keys(item, schema["items"], f"{where}[{n}]")
    return found


def test_the_generated_functions_are_valid_function_resources() -> None:
    """Each Function validates against the CRD's v1 schema and carries no key the schema would prune."""
    schema = function_schema()
    resources = [d for d in yaml.safe_load_all((REPO_ROOT / "deploy" / "openfaas" / "functions.yml").read_text()) if d]
    assert resources
    for resource in resources:
        jsonschema.validate(resource, schema)
        assert unknown_keys(resource, schema) == [], resource["metadata"]["name"]
