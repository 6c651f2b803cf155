"""Through the whole stack, a result that may be incomplete says so: warnings on the job and on its pages."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from common.config import Settings
from common.rules import apikeys
from ocr_pipeline_client import Client
from tests.support import Gateway, render_page, scanned_pdf

pytestmark = pytest.mark.integration


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", dpi=(300, 300))
    return buf.getvalue()


def test_a_blank_page_completes_with_an_empty_page_warning(gateway: Gateway) -> None:
    """A PDF whose second page is blank completes, and its job and that page say empty_page, page 2."""
    pdf = scanned_pdf([["WARNING test page one reads well"], []])
    reply = gateway.upload(pdf, "two.pdf")
    assert reply.status == 202, reply.body
    done = gateway.wait_final(reply.json()["job_id"])
    assert done["status"] == "completed", done
    assert [(w["code"], w["pages"]) for w in done["warnings"]] == [("empty_page", [2])]
    pages = gateway.status(done["job_id"], "?include=pages").json()["pages"]
    assert pages[0]["warnings"] == [] and [w["code"] for w in pages[1]["warnings"]] == ["empty_page"]


def test_a_skewed_page_reports_its_skew_and_polygons(gateway: Gateway) -> None:
    """A scan leaning 4 degrees is read whole; status gives its skew and each word's polygon on the scan."""
    lines = ["Skewed pages are read whole again", "Every word keeps its place on the scan",
             "The polygon follows the lean of the line"]
    scan = render_page(lines).rotate(4.0, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    reply = gateway.upload(_png(scan), "skewed.png")
    done = gateway.wait_final(reply.json()["job_id"])
    assert done["status"] == "completed" and done["warnings"] == [], done
    assert "polygon follows the lean" in " ".join(done["text"].split()).lower()
    [page] = gateway.status(done["job_id"], "?include=words").json()["pages"]
    assert page["skew"] == pytest.approx(4.0, abs=0.3) and page["rotation"] == 0
    assert (page["width"], page["height"]) == scan.size
    assert all(len(word["polygon"]) == 4 for word in page["words"])


def test_the_sdk_and_the_cli_show_a_jobs_warnings(stack: Any, settings: Settings, tmp_path: Path) -> None:
    """The SDK's JobStatus carries the warnings, typed; `ocr status` prints each with its code."""
    token = apikeys.create(settings, f"warn-{uuid.uuid4().hex[:8]}").token
    client = Client(stack.gateway_url, token)
    accepted = client.upload(scanned_pdf([[]]), filename="blank.pdf")
    done = client.wait(accepted.job_id, timeout=120)
    assert [(w.code, w.pages) for w in done.warnings] == [("empty_page", [1])]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_")}
    env.update(OCR_URL=stack.gateway_url, OCR_API_KEY=token, OCR_CONFIG="", XDG_CONFIG_HOME=str(tmp_path))
    shown = subprocess.run([sys.executable, "-m", "ocr_pipeline_client", "status", accepted.job_id], env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "warning   empty_page: page 1: no text was found on the page" in shown.stdout
