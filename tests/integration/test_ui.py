"""The web page in a real browser: headless chromium, driven over its DevTools protocol, uploads scans through
the page's file input and drop zone, watches them complete, downloads, views, finds, re-processes and deletes
them, survives a reload, fits a phone, and passes axe-core; it makes the pictures of these states in docs/."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import urllib3

from common.config import Settings
from common.rules import apikeys
from ocrstack.services import free_port
from tests.support import image_bytes, scanned_pdf

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LINES = ["Invoice 2041 for harbour repairs", "Total due: 1250 EUR", "Thank you for your business"]


class DevTools:
    """One page of the browser over its DevTools websocket: commands answered by id, events kept in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" not in data:
                self.events.append(data)
                continue
            answer = self._answers.pop(data["id"])
            if "error" in data:
                answer.set_exception(AssertionError(f"DevTools refused the command: {data['error']}"))
            else:
                answer.set_result(data.get("result", {}))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[self._next] = answer
        await self.ws.send_json({"id": self._next, "method": method, "params": params})
        return await asyncio.wait_for(answer, 60)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Polls a page expression until it is truthy, as a user watches the page."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                message = await self.evaluate("document.querySelector('#message').textContent")
                cards = await self.evaluate("[...document.querySelectorAll('.job')].map(c => c.innerText)")
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; message {message!r}, "
                                     f"cards {cards!r}")
            await asyncio.sleep(0.25)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


def chromium_command(port: int, profile: Path) -> list[str]:
    binary = shutil.which("chromium")
    assert binary is not None, "chromium is missing: local-stack/bootstrap installs Debian's chromium"
    command = [
        binary, "--headless", f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "--disable-gpu",
        "--disable-extensions", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900",
        "about:blank",
    ]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # chromium refuses to run its sandbox as root
    return command


def processes_using(profile: Path) -> list[int]:
    """Live processes whose command line names this profile folder: the browser and every child it started."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(profile).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def stop_browser(browser: subprocess.Popen[bytes], profile: Path) -> None:
    """SIGTERM the browser's group, SIGKILL it (and any child that left the group) if it lingers."""
    try:
        os.killpg(browser.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        browser.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for pid in [browser.pid, *processes_using(profile)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    browser.wait(timeout=10)


@asynccontextmanager
async def headless_page(profile: Path, log: Path) -> AsyncIterator[DevTools]:
    """A headless chromium of the test's own (private profile, DevTools on 127.0.0.1) and its first page."""
    port = free_port()
    with log.open("wb") as out:
        browser = subprocess.Popen(chromium_command(port, profile), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                assert browser.poll() is None, f"chromium exited: {log.read_text(errors='replace')[-2000:]}"
                try:
                    async with http.get(f"http://127.0.0.1:{port}/json/list") as reply:
                        pages = [t for t in await reply.json() if t["type"] == "page"]
                    if pages:
                        break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "chromium's DevTools did not answer within 60 s"
                await asyncio.sleep(0.2)
            async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = DevTools(ws)
                try:
                    for domain in ("Page", "Runtime", "Network", "Log", "DOM"):
                        await page.send(f"{domain}.enable")
                    yield page
                finally:
                    await page.close()
    finally:
        stop_browser(browser, profile)
        assert not processes_using(profile), "a chromium process outlived the test"


def responses(page: DevTools) -> list[dict[str, Any]]:
    return [e["params"]["response"] for e in page.events if e["method"] == "Network.responseReceived"]


def problems(page: DevTools, asked_for: dict[str, int | tuple[int, ...]], reloaded_at: int = 0) -> list[Any]:
    """What a developer would see in the browser's console: failed loads, 4xx/5xx (but the refusals the test
    asked for: URL prefix -> status), blocked requests, logged errors and uncaught exceptions. Calls a reload
    cut short (asked for before event `reloaded_at`) are the reload's doing."""
    asked_at = {e["params"]["requestId"]: i for i, e in enumerate(page.events)
                if e["method"] == "Network.requestWillBeSent"}
    urls = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in page.events
            if e["method"] == "Network.requestWillBeSent"}
    found: list[Any] = []

    def expected(url: str, status: int | None) -> bool:
        return any(url.startswith(prefix) and (status is None or status in (code if isinstance(code, tuple) else (code,)))
                   for prefix, code in asked_for.items())

    for event in page.events:
        method, params = event["method"], event["params"]
        if method == "Network.responseReceived" and params["response"]["status"] >= 400:
            if not expected(params["response"]["url"], params["response"]["status"]):
                found.append((params["response"]["status"], params["response"]["url"]))
        elif method == "Network.loadingFailed":
            # A blob: download the browser hands to its download manager reports as "aborted" here.
            aborted = params.get("errorText") == "net::ERR_ABORTED"
            params = {**params, "url": urls.get(params["requestId"])}
            if not (aborted and (params.get("type") == "Other"
                                 or asked_at.get(params["requestId"], reloaded_at) < reloaded_at)):
                found.append(params)
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            if not (entry.get("source") == "network" and expected(entry.get("url", ""), None)):
                found.append(entry)
        elif method == "Runtime.exceptionThrown" or (method == "Runtime.consoleAPICalled"
                                                      and params["type"] in ("error", "assert")):
            found.append(params)
    return found


async def screenshot(page: DevTools, path: Path) -> None:
    """The whole page, not only the window, as a PNG."""
    metrics = await page.send("Page.getLayoutMetrics")
    size = metrics["cssContentSize"]
    shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                           clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
    path.write_bytes(base64.b64decode(shot["data"]))


def js(value: str) -> str:
    return json.dumps(value)


@pytest.fixture
def api_key(settings: Settings) -> str:
    """A user key of the test's own: the page lists only its documents."""
    return apikeys.create(settings, f"ui-{uuid.uuid4().hex[:8]}", apikeys.Role.USER).token


def axe_source() -> str:
    """axe-core as the bootstrap installs it (npm, pinned); missing, the test fails and names the fix."""
    from ocrstack.services import cache_dir

    bootstrap = (REPO / "local-stack" / "bootstrap").read_text()
    version = re.search(r"^axe_version=(\S+)$", bootstrap, re.M)
    assert version is not None, "local-stack/bootstrap pins no axe_version"
    path = cache_dir() / "npm" / f"axe-core-{version.group(1)}" / "node_modules" / "axe-core" / "axe.min.js"
    assert path.is_file(), f"axe-core is not in {path.parent}: run ./local-stack/bootstrap"
    return path.read_text()


async def serious_violations(page: DevTools) -> list[dict[str, Any]]:
    """axe-core run in the page: the serious and critical violations, each with its rule and elements."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(axe_source())
    found = await page.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations"
                                ".filter(v => ['serious', 'critical'].includes(v.impact))"
                                ".map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))")
    return list(found)


def keep_screenshot(shot: Path, name: str) -> None:
    """A picture of a state for the docs: made once, kept in the repository (delete it to make a new one)."""
    assert shot.read_bytes().startswith(b"\x89PNG")
    kept = REPO / "docs" / name
    if not kept.exists():
        shutil.copyfile(shot, kept)


async def paste_key(page: DevTools, key: str) -> None:
    await page.evaluate("document.querySelector('#key').focus()")
    await page.send("Input.insertText", text=key)
    await page.evaluate("document.querySelector('#key-form').requestSubmit()")


async def choose_files(page: DevTools, *files: Path) -> None:
    """Pick files in the page's file input, as a user choosing them in the file dialog."""
    root_node = (await page.send("DOM.getDocument"))["root"]["nodeId"]
    node = (await page.send("DOM.querySelector", nodeId=root_node, selector="#files"))["nodeId"]
    await page.send("DOM.setFileInputFiles", nodeId=node, files=[str(f) for f in files])


def card_of(name: str) -> str:
    return f"[...document.querySelectorAll('.job')].find(c => c.querySelector('.filename').textContent === {js(name)})"


async def downloaded(page: DevTools, folder: Path, name: str, what: str) -> bytes:
    """Waits for the browser to have saved `name` in its download folder, as a user finds it there."""
    path = folder / name
    deadline = time.monotonic() + 30
    while not (path.exists() and path.stat().st_size > 0 and not list(folder.glob("*.crdownload"))):
        assert time.monotonic() < deadline, f"{what}: no {name} in the downloads, only {sorted(os.listdir(folder))}"
        await asyncio.sleep(0.2)
    return path.read_bytes()


def test_page_uploads_a_scan_shows_its_progress_text_and_pdf_and_finds_it(stack: Any, api_key: str,
                                                                         tmp_path: Path) -> None:
    """Opened at the gateway's `/`, with a key pasted once (a refused key is not kept), the page uploads a
    scanned page picked in its file input, follows it to "completed", shows the recognised text, downloads its
    searchable PDF and text through the API under the original's name, lists and finds it naming the page of
    the hit; a refused and a failed upload show their code and message without a bar; the page view draws the
    words over each page's preview and finds a word's page; re-process, reload and delete work; axe-core finds
    no serious violation; nothing fails to load and the policy blocks nothing."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))
    auth = {"Authorization": f"Bearer {api_key}"}
    root = http.request("GET", stack.gateway_url + "/", redirect=False)
    assert (root.status, root.headers["Location"]) == (302, "/function/ui/")
    bad_key = "ocr_000000000000_" + "x" * 32
    refusal = http.request("GET", stack.gateway_url + "/function/list?limit=1",
                           headers={"Authorization": f"Bearer {bad_key}"})
    assert refusal.status == 401
    refusal_message = json.loads(refusal.data)["error"]["message"]

    scan = tmp_path / "harbour-invoice.png"
    scan.write_bytes(image_bytes(LINES))
    two_pages = tmp_path / "board-minutes.pdf"
    # Its third page blank: the card says so (empty_page) beside the text of the other two.
    two_pages.write_bytes(scanned_pdf([["Minutes of the board", "held on Tuesday"], ["Next meeting in spring"], []]))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a scan")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    shot = tmp_path / "ui.png"

    async def drive() -> None:
        async with headless_page(tmp_path / "profile", tmp_path / "chromium.log") as page:
            await page.send("Page.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
            await page.send("Page.navigate", url=stack.gateway_url + "/")
            await page.wait_for("document.readyState === 'complete' && !!document.querySelector('#key-form')", 30,
                                "the page to load")
            assert await page.evaluate("location.pathname") == "/function/ui/"
            [document] = [r for r in responses(page) if r["url"] == stack.gateway_url + "/function/ui/"]
            headers = {k.lower(): v for k, v in document["headers"].items()}
            assert headers["content-security-policy"].startswith("default-src 'self'")
            assert headers["content-type"] == "text/html; charset=utf-8"

            # A wrong key: the service's own message is what the page shows, and the key is not kept.
            await paste_key(page, bad_key)
            shown = await page.wait_for("document.querySelector('#message').hidden ? '' : "
                                        "document.querySelector('#message').textContent", 30, "the refusal")
            assert shown == refusal_message
            assert await page.evaluate("sessionStorage.getItem('ocr-api-key')") is None
            assert await page.evaluate("document.querySelector('#forget').hidden")
            assert await page.evaluate("document.activeElement.id") == "key"

            await paste_key(page, api_key)
            await page.wait_for("sessionStorage.getItem('ocr-api-key') !== null", 30, "the key to be taken")
            assert await page.evaluate("sessionStorage.getItem('ocr-api-key')") == api_key
            await page.wait_for("document.querySelector('#recent-note').textContent.includes('No documents yet')",
                                30, "the (empty) list of the new key's documents")
            assert await page.evaluate("document.querySelector('#message').hidden")
            assert api_key not in await page.evaluate("document.body.innerText"), "the key's secret is shown"
            key_id = api_key.split("_")[1]
            assert await page.evaluate("document.querySelector('#key-state').textContent") == \
                f"Using key {key_id} in this tab."

            # Every state the document's card goes through, as the page shows them.
            await page.evaluate("""window.seenStates = [];
                new MutationObserver(() => {
                  const card = document.querySelector('.job');
                  if (card && card.dataset.state !== window.seenStates.at(-1)) window.seenStates.push(card.dataset.state);
                }).observe(document.querySelector('#jobs'), {subtree: true, childList: true, attributes: true})""")
            await choose_files(page, scan)
            card = card_of(scan.name)
            await page.wait_for(f"{card} && {card}.dataset.state === 'completed'", 240, "the job to complete")
            seen = await page.evaluate("window.seenStates")
            assert seen[:2] == ["uploading", "pending"] and seen[-1] == "completed", seen
            assert await page.evaluate(f"{card}.querySelector('.progress-text').textContent") == "1 of 1 page"
            text = await page.evaluate(f"{card}.querySelector('.text').textContent")
            words = " ".join(text.split()).lower()
            for expected in ("invoice 2041", "harbour repairs", "total due", "thank you for your business"):
                assert expected in words, text
            assert await page.evaluate(f"{card}.querySelector('.job-warnings').hidden")  # a page read whole

            # Downloads through the API, with the key, saved under the original's name.
            await page.evaluate(f"{card}.querySelector('.download.pdf').click()")
            pdf = await downloaded(page, downloads, "harbour-invoice.ocr.pdf", "the searchable PDF")
            assert pdf.startswith(b"%PDF")
            await page.evaluate(f"{card}.querySelector('.download[data-kind=text]').click()")
            saved_text = await downloaded(page, downloads, "harbour-invoice.txt", "the text")
            assert "harbour" in saved_text.decode().lower()

            # A file the service refuses, and one it takes but cannot read: each card says code and message,
            # and shows no bar.
            await choose_files(page, notes, broken)
            refused, failed = card_of(notes.name), card_of(broken.name)
            await page.wait_for(f"{refused}?.dataset.state === 'refused' && {failed}?.dataset.state === 'failed'",
                                120, "the refusal and the failure")
            for which, code in ((refused, "unsupported_media_type"), (failed, "corrupt_document")):
                error = await page.evaluate(f"{which}.querySelector('.job-error').textContent")
                assert error.endswith(f"({code})") and len(error) > len(code) + 10, error
                assert await page.evaluate(f"{which}.querySelector('progress').hidden"), code
                assert await page.evaluate(f"getComputedStyle({which}.querySelector('progress')).display") == "none"
            await screenshot(page, shot)
            keep_screenshot(shot, "ui-refused-and-failed.png")
            for which in (refused, failed):
                await page.evaluate(f"{which}.querySelector('.close').click()")

            # A two-page scan dropped on the drop zone, as from a file manager: a card of its own, both pages.
            x, y = await page.evaluate("(() => { const r = document.querySelector('#drop').getBoundingClientRect(); "
                                       "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
            dragged = {"items": [], "files": [str(two_pages)], "dragOperationsMask": 1}
            for kind in ("dragEnter", "dragOver", "drop"):
                await page.send("Input.dispatchDragEvent", type=kind, x=x, y=y, data=dragged)
            dropped = card_of(two_pages.name)
            await page.wait_for(f"{dropped}?.dataset.state === 'completed'", 240, "the dropped scan to complete")
            assert await page.evaluate(f"{dropped}.querySelector('.progress-text').textContent") == "3 of 3 pages"
            text = " ".join((await page.evaluate(f"{dropped}.querySelector('.text').textContent")).split()).lower()
            assert "page 1" in text and "page 2" in text and "minutes of the board" in text and "next meeting" in text
            warned = await page.evaluate(f"{dropped}.querySelector('.job-warnings').innerText")
            assert "page 3: no text was found on the page (empty_page)" in warned, warned

            # The list refreshes when the job ends; a search finds the document by a word and names its page.
            rows = "[...document.querySelectorAll('#recent tbody tr')]"
            await page.wait_for(f"{rows}.some(r => r.textContent.includes({js(scan.name)}) "
                                "&& r.querySelector('.state').textContent === 'completed')", 30,
                                "the document in the recent list")
            await page.evaluate("document.querySelector('#q').value = 'meeting'")
            await page.evaluate("document.querySelector('#search').requestSubmit()")
            snippet = await page.wait_for(f"{rows}.map(r => r.querySelector('.snippet')?.textContent).find(Boolean)",
                                          30, "a search hit with its snippet")
            assert "meeting" in snippet.lower()
            where = await page.wait_for(f"{rows}.map(r => r.querySelector('.hit-pages')?.textContent).find(Boolean)",
                                        30, "the page of the hit")
            assert where == "on page 2", where
            # A plural finds the singular (stemmed search); a refused search clears the rows of the one before.
            await page.evaluate("document.querySelector('#q').value = 'zebra'")
            await page.evaluate("document.querySelector('#search').requestSubmit()")
            await page.wait_for(f"{rows}.length === 0 && document.querySelector('#recent-note').textContent"
                                ".includes('No document contains every word')", 30, "a search without a hit")
            await page.evaluate("document.querySelector('#q').value = 'harbours'")
            await page.evaluate("document.querySelector('#search').requestSubmit()")
            await page.wait_for(f"{rows}.some(r => r.textContent.includes({js(scan.name)}) "
                                "&& r.querySelector('.snippet')?.textContent.toLowerCase().includes('harbour'))", 30,
                                "the plural's hit")
            await page.evaluate("document.querySelector('#q').value = 'the'")
            await page.evaluate("document.querySelector('#search').requestSubmit()")
            refused = await page.wait_for("document.querySelector('#message').hidden ? '' : "
                                          "document.querySelector('#message').textContent", 30, "the refused search")
            assert "no searchable word" in refused
            assert await page.evaluate(f"{rows}.length") == 0
            assert await page.evaluate("document.querySelector('#more').hidden")
            await page.evaluate("document.querySelector('#q').value = 'harbour'")
            await page.evaluate("document.querySelector('#search').requestSubmit()")
            await page.wait_for(f"{rows}.map(r => r.querySelector('.snippet')?.textContent).find(Boolean)", 30,
                                "the search again")

            await screenshot(page, shot)
            keep_screenshot(shot, "ui.png")

            # The page view: page 1's preview with its words drawn over it, a toggle, and find naming page 2.
            await page.evaluate(f"{dropped}.querySelector('.view').click()")
            await page.wait_for("!document.querySelector('#viewer').hidden && "
                                "document.querySelector('#page-image').naturalWidth > 0 && "
                                "document.querySelectorAll('#page-words .word').length > 0", 60, "page 1 with its words")
            assert await page.evaluate("document.activeElement.id") == "viewer-title"
            assert await page.evaluate("document.querySelector('#page-number').textContent") == "Page 1 of 3"
            titles = await page.evaluate("[...document.querySelectorAll('#page-words .word title')].map(t => t.textContent)")
            assert any(t.startswith("Minutes (confidence ") for t in titles), titles
            # The boxes sit on the picture: the SVG's coordinates are the page's pixels, scaled to the image.
            box = await page.evaluate("(() => { const i = document.querySelector('#page-image').getBoundingClientRect(), "
                                      "s = document.querySelector('#page-words').getBoundingClientRect(); "
                                      "return [i.width - s.width, i.height - s.height]; })()")
            assert all(abs(d) < 2 for d in box), box
            await page.evaluate("document.querySelector('#show-words').click()")
            assert await page.evaluate("getComputedStyle(document.querySelector('#page-words')).display") == "none"
            await page.evaluate("document.querySelector('#show-words').click()")
            await page.evaluate("document.querySelector('#find-q').value = 'spring'")
            await page.evaluate("document.querySelector('#find').requestSubmit()")
            await page.wait_for("document.querySelector('#page-number').textContent === 'Page 2 of 3' && "
                                "document.querySelectorAll('#page-words .word.hit').length === 1", 60,
                                "find to show page 2 with its hit")
            assert (await page.evaluate("document.querySelector('#find-results').innerText")).startswith("Page 2")
            hit = await page.evaluate("document.querySelector('#page-words .word.hit title').textContent")
            assert hit.lower().startswith("spring"), hit
            await screenshot(page, shot)
            keep_screenshot(shot, "ui-pages.png")
            violations = await serious_violations(page)
            assert not violations, violations
            await page.evaluate("document.querySelector('#viewer-close').click()")
            assert await page.evaluate("document.activeElement.className") == "view"

            # Re-process in another language: the card follows the new job to completion.
            first_job = await page.evaluate(f"{card}.dataset.job")
            await page.evaluate(f"{card}.querySelector('.relang').value = 'eng'")
            await page.evaluate(f"{card}.querySelector('.reprocess').requestSubmit()")
            await page.wait_for(f"{card}.dataset.job !== {js(first_job)}", 30, "the re-process to start")
            assert await page.evaluate(f"document.activeElement === {card}.querySelector('.filename')")
            await page.wait_for(f"{card}.dataset.state === 'completed'", 240, "the re-process to complete")
            again = json.loads(http.request("GET", stack.gateway_url + f"/function/status/{first_job}",
                                            headers=auth).data)
            document_id = again["document_id"]
            now = json.loads(http.request("GET", stack.gateway_url + f"/function/status/{document_id}",
                                          headers=auth).data)
            assert now["lang"] == "eng" and now["job_id"] != first_job

            # A reload keeps the open cards and their results.
            open_before = await page.evaluate("[...document.querySelectorAll('.job .filename')].map(f => f.textContent)")
            reloaded_at = len(page.events)
            await page.send("Page.reload")
            await page.wait_for(f"document.readyState === 'complete' && {card}?.dataset.state === 'completed' && "
                                f"{dropped}?.dataset.state === 'completed'", 60, "the cards after a reload")
            assert await page.evaluate("[...document.querySelectorAll('.job .filename')].map(f => f.textContent)") == \
                open_before
            assert "harbour" in (await page.evaluate(f"{card}.querySelector('.text').textContent")).lower()

            # Delete from the list: two presses, then the row and the card are gone, and so is the document.
            row = f"{rows}.find(r => r.textContent.includes({js(scan.name)}))"
            await page.wait_for(f"!!{row}", 30, "the row")
            await page.evaluate(f"{row}.querySelector('button[aria-label^=Delete]').click()")
            assert await page.evaluate(f"!!{card}")
            await page.evaluate(f"{row}.querySelector('button[aria-label^=\"Press again\"]').click()")
            await page.wait_for(f"!{row} && !{card}", 30, "the deleted document to leave the page")
            gone = http.request("GET", stack.gateway_url + f"/function/documents/{document_id}", headers=auth)
            assert gone.status == 404

            # A document uploaded elsewhere while the list shows it being read: the list follows it by itself.
            other = http.request("POST", stack.gateway_url + "/function/upload", headers=auth,
                                 fields={"file": ("elsewhere.png", image_bytes(["Uploaded elsewhere"]), "image/png")})
            assert other.status == 202
            await page.evaluate("document.querySelector('#clear-search').click()")
            elsewhere = f"{rows}.find(r => r.textContent.includes('elsewhere.png'))"
            await page.wait_for(f"!!{elsewhere}", 30, "the other upload in the list")
            await page.wait_for(f"{elsewhere}?.querySelector('.state').textContent === 'completed'", 120,
                                "the list to refresh by itself")

            trouble = problems(page, {stack.gateway_url + "/function/list": (400, 401),
                                      stack.gateway_url + "/function/upload": 415}, reloaded_at)
            assert not trouble, [(t.get("url"), t.get("errorText")) if isinstance(t, dict) else t for t in trouble]
            loaded = {r["url"].removeprefix(stack.gateway_url) for r in responses(page)}
            assert "/favicon.ico" not in loaded

    asyncio.run(drive())


def test_a_phone_sized_window_scrolls_only_down_reaches_every_control_and_passes_axe(
        stack: Any, api_key: str, tmp_path: Path) -> None:
    """At 390 x 844 the page with a card open, the list and the page view is no wider than the window, every
    control is inside it and reachable by Tab, focus follows the user's actions, and axe-core finds no serious
    or critical violation."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))
    auth = {"Authorization": f"Bearer {api_key}"}
    accepted = http.request("POST", stack.gateway_url + "/function/upload", headers=auth,
                            fields={"file": ("a-rather-long-file-name-for-a-small-phone-screen.png",
                                             image_bytes(LINES), "image/png")})
    job = json.loads(accepted.data)["job_id"]
    deadline = time.monotonic() + 180
    while json.loads(http.request("GET", stack.gateway_url + f"/function/status/{job}", headers=auth).data)[
            "status"] != "completed":
        assert time.monotonic() < deadline, "the upload did not complete"
        time.sleep(0.5)
    shot = tmp_path / "phone.png"

    async def drive() -> None:
        async with headless_page(tmp_path / "profile", tmp_path / "chromium.log") as page:
            await page.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1,
                            mobile=True)
            await page.send("Page.navigate", url=stack.gateway_url + "/function/ui/")
            await page.wait_for("document.readyState === 'complete'", 30, "the page to load")
            await paste_key(page, api_key)
            rows = "[...document.querySelectorAll('#recent tbody tr')]"
            await page.wait_for(f"{rows}.length === 1", 30, "the listed document")
            await page.evaluate(f"{rows}[0].querySelector('button').click()")
            card = "document.querySelector('.job')"
            await page.wait_for(f"{card}?.dataset.state === 'completed'", 30, "the card")
            assert await page.evaluate("document.activeElement.classList.contains('filename')")
            await page.evaluate(f"{card}.querySelector('.view').click()")
            await page.wait_for("document.querySelector('#page-image').naturalWidth > 0", 60, "the page view")

            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page is {width} px wide in a 390 px window"
            outside = await page.evaluate("""[...document.querySelectorAll('button, input, a[href], label.button, pre')]
                .filter(e => e.offsetParent !== null && e.id !== 'files')
                .map(e => [e.id || e.className || e.textContent, e.getBoundingClientRect()])
                .filter(([, r]) => r.left < 0 || r.right > 390).map(([n]) => n)""")
            assert not outside, f"controls outside the window: {outside}"
            # Tab reaches every visible control, in the page's order.
            controls = await page.evaluate("""[...document.querySelectorAll('button, input, pre[tabindex]')]
                .filter(e => e.offsetParent !== null && !e.disabled).length""")
            await page.evaluate("document.activeElement.blur()")
            reached = set()
            for _ in range(controls + 5):
                await page.send("Input.dispatchKeyEvent", type="keyDown", key="Tab", code="Tab",
                                windowsVirtualKeyCode=9)
                await page.send("Input.dispatchKeyEvent", type="keyUp", key="Tab", code="Tab", windowsVirtualKeyCode=9)
                reached.add(await page.evaluate("(() => { const e = document.activeElement; return e.id || "
                                                "(e.getAttribute('aria-label') || e.textContent || e.className) + "
                                                "'@' + [...document.querySelectorAll('*')].indexOf(e); })()"))
            assert len(reached) >= controls, f"Tab reached {len(reached)} of {controls} controls: {sorted(reached)}"
            await screenshot(page, shot)
            keep_screenshot(shot, "ui-phone.png")
            violations = await serious_violations(page)
            assert not violations, violations
            # Closing the card leaves the focus in the documents section, not at the page's top.
            await page.evaluate(f"{card}.querySelector('.close').click()")
            assert await page.evaluate("document.activeElement.id") == "jobs-title"
            trouble = problems(page, {})
            assert not trouble, trouble

    asyncio.run(drive())


def test_an_admin_sees_whose_each_document_is_and_lists_one_owner_alone(stack: Any, settings: Settings,
                                                                         tmp_path: Path) -> None:
    """With an admin key the list shows an Owner column (a user's key never does) and a filter by owner that
    lists that owner's documents only."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))
    owners = {}
    for name in ("alice", "bob"):
        key = apikeys.create(settings, f"ui-{name}-{uuid.uuid4().hex[:6]}", apikeys.Role.USER)
        owners[name] = key.token.split("_")[1]
        upload = http.request("POST", stack.gateway_url + "/function/upload",
                              headers={"Authorization": f"Bearer {key.token}"},
                              fields={"file": (f"{name}-{owners[name]}.png", image_bytes([f"Owned by {name}"]),
                                               "image/png")})
        assert upload.status == 202, upload.data
    admin = apikeys.create(settings, f"ui-admin-{uuid.uuid4().hex[:6]}", apikeys.Role.ADMIN).token
    user = apikeys.create(settings, f"ui-user-{uuid.uuid4().hex[:6]}", apikeys.Role.USER).token

    async def drive() -> None:
        async with headless_page(tmp_path / "profile", tmp_path / "chromium.log") as page:
            await page.send("Page.navigate", url=stack.gateway_url + "/function/ui/")
            await page.wait_for("document.readyState === 'complete'", 30, "the page to load")
            await paste_key(page, user)
            await page.wait_for("document.querySelector('#key-state').textContent.includes('Using key')", 30,
                                "the user's key")
            await asyncio.sleep(1.5)  # the list's first answer: a user sees no owners
            assert await page.evaluate("[...document.querySelectorAll('.owner-only')].every(e => e.hidden)")
            await paste_key(page, admin)
            rows = "[...document.querySelectorAll('#recent tbody tr')]"
            both = " && ".join(f"{rows}.some(r => r.textContent.includes({js(owners[n])}))" for n in owners)
            await page.wait_for(both, 60, "both owners' documents")
            assert await page.evaluate("!document.querySelector('#owner-filter').closest('.owner-only').hidden")
            header = await page.evaluate("[...document.querySelectorAll('#recent th')].map(h => h.hidden ? '' : "
                                         "h.textContent).join('|')")
            assert "Owner" in header
            await page.evaluate(f"document.querySelector('#owner-filter').value = {js(owners['bob'])}")
            await page.evaluate("document.querySelector('#search').requestSubmit()")
            await page.wait_for(f"{rows}.length > 0 && {rows}.every(r => r.textContent.includes({js(owners['bob'])}))",
                                30, "bob's documents alone")

    asyncio.run(drive())
