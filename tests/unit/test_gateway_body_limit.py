"""A function's body limit comes from its stack file (an annotation naming a setting), not from the gateway's code."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocrstack.gateway.intake import BODY_LIMIT_ANNOTATION, BodyRules, body_limit_of, rules_for_function
from ocrstack.gateway.provider import load_stack

REPO = Path(__file__).resolve().parents[2]
GATEWAY = BodyRules(max_bytes=200 * 1024 * 1024)


def test_a_function_naming_a_body_limit_setting_gets_that_plus_the_forms_room() -> None:
    """Its own code and its setting named in the refusal, as the function itself would refuse."""
    rules = rules_for_function(GATEWAY, "MAX_UPLOAD_BYTES", {"MAX_UPLOAD_BYTES": "1000"})
    assert (rules.max_bytes, rules.too_large_code) == (1000 + 64 * 1024, "file_too_large")
    assert "MAX_UPLOAD_BYTES=1000" in rules.limit_setting


@pytest.mark.parametrize(("setting", "environment"), [
    (None, {"MAX_UPLOAD_BYTES": "1000"}),  # no annotation: the variable alone means nothing to the gateway
    ("MAX_UPLOAD_BYTES", {}), ("MAX_UPLOAD_BYTES", {"MAX_UPLOAD_BYTES": "abc"}),
    ("MAX_UPLOAD_BYTES", {"MAX_UPLOAD_BYTES": str(300 * 1024 * 1024)}),  # larger than the gateway's own bound
])
def test_otherwise_the_gateways_own_bound_applies(setting: str | None, environment: dict[str, str]) -> None:
    """Without a usable, smaller stated limit the gateway's --max-body-bytes holds."""
    assert rules_for_function(GATEWAY, setting, environment) is GATEWAY


def test_the_annotation_must_name_an_environment_variable() -> None:
    """A typo in the stack file stops the gateway at start, naming the annotation."""
    assert body_limit_of({BODY_LIMIT_ANNOTATION: " LIMIT_1 "}) == "LIMIT_1" and body_limit_of({}) is None
    with pytest.raises(ValueError, match=BODY_LIMIT_ANNOTATION):
        body_limit_of({BODY_LIMIT_ANNOTATION: "not a name"})


def test_the_stack_file_gives_upload_its_limit_and_no_other_function_one() -> None:
    """stack.yml, read as the gateway reads it: only upload bounds its body by a setting of its own."""
    specs = load_stack(REPO / "stack.yml")
    assert {name: spec.body_limit for name, spec in specs.items() if spec.body_limit} == {"upload": "MAX_UPLOAD_BYTES"}
