"""The web page in a real browser: headless chromium, driven over its DevTools protocol, uploads a scanned page
through the page's file input, watches it complete, and shows its text, its searchable PDF and the search."""

from __future__ import annotations

import asyncio
import base64
import json
import os
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


def problems(page: DevTools, refused_url: str) -> list[Any]:
    """What a developer would see in the browser's console: failed loads, 4xx/5xx (but the 401 and the 400 of a
    refused search the test asked for at refused_url), blocked requests, logged errors and uncaught exceptions."""
    found: list[Any] = []
    for event in page.events:
        method, params = event["method"], event["params"]
        if method == "Network.responseReceived" and params["response"]["status"] >= 400:
            if not (params["response"]["status"] in (400, 401) and params["response"]["url"].startswith(refused_url)):
                found.append((params["response"]["status"], params["response"]["url"]))
        elif method == "Network.loadingFailed":
            found.append(params)
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            if not (entry.get("source") == "network" and entry.get("url", "").startswith(refused_url)):
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


def test_page_uploads_a_scan_shows_its_progress_text_and_pdf_and_finds_it(stack: Any, api_key: str,
                                                                         tmp_path: Path) -> None:
    """Opened at the gateway's `/`, with a key pasted once, the page uploads a scanned page picked in its file
    input, follows it to "completed", shows the recognised text and a working searchable-PDF link, lists and
    finds it; API errors appear as their message; nothing fails to load and the policy blocks nothing."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))
    root = http.request("GET", stack.gateway_url + "/", redirect=False)
    assert (root.status, root.headers["Location"]) == (302, "/function/ui/")
    bad_key = "ocr_000000000000_" + "x" * 32
    refusal = http.request("GET", stack.gateway_url + "/function/list?limit=15",
                           headers={"Authorization": f"Bearer {bad_key}"})
    assert refusal.status == 401
    refusal_message = json.loads(refusal.data)["error"]["message"]

    scan = tmp_path / "harbour-invoice.png"
    scan.write_bytes(image_bytes(LINES))
    two_pages = tmp_path / "board-minutes.pdf"
    # Its third page blank: the card says so (empty_page) beside the text of the other two.
    two_pages.write_bytes(scanned_pdf([["Minutes of the board", "held on Tuesday"], ["Next meeting in spring"], []]))
    shot = tmp_path / "ui.png"

    async def drive() -> None:
        async with headless_page(tmp_path / "profile", tmp_path / "chromium.log") as page:
            await page.send("Page.navigate", url=stack.gateway_url + "/")
            await page.wait_for("document.readyState === 'complete' && !!document.querySelector('#key-form')", 30,
                                "the page to load")
            assert await page.evaluate("location.pathname") == "/function/ui/"
            [document] = [r for r in responses(page) if r["url"] == stack.gateway_url + "/function/ui/"]
            headers = {k.lower(): v for k, v in document["headers"].items()}
            assert headers["content-security-policy"].startswith("default-src 'self'")
            assert headers["content-type"] == "text/html; charset=utf-8"

            async def paste_key(key: str) -> None:
                await page.evaluate("document.querySelector('#key').focus()")
                await page.send("Input.insertText", text=key)
                await page.evaluate("document.querySelector('#key-form').requestSubmit()")

            # A wrong key: the service's own message is what the page shows.
            await paste_key(bad_key)
            shown = await page.wait_for("document.querySelector('#message').hidden ? '' : "
                                        "document.querySelector('#message').textContent", 30, "the refusal")
            assert shown == refusal_message

            await paste_key(api_key)
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
            # Pick the scan in the file input, as a user choosing it in the file dialog.
            root_node = (await page.send("DOM.getDocument"))["root"]["nodeId"]
            node = (await page.send("DOM.querySelector", nodeId=root_node, selector="#files"))["nodeId"]
            await page.send("DOM.setFileInputFiles", nodeId=node, files=[str(scan)])
            card = "document.querySelector('.job')"
            await page.wait_for(f"{card} && {card}.dataset.state === 'completed'", 240, "the job to complete")

            assert await page.evaluate(f"{card}.querySelector('.filename').textContent") == scan.name
            seen = await page.evaluate("window.seenStates")
            assert seen[:2] == ["uploading", "pending"] and seen[-1] == "completed", seen
            assert await page.evaluate(f"{card}.querySelector('.progress-text').textContent") == "1 of 1 page"
            text = await page.evaluate(f"{card}.querySelector('.text').textContent")
            words = " ".join(text.split()).lower()
            for expected in ("invoice 2041", "harbour repairs", "total due", "thank you for your business"):
                assert expected in words, text
            assert await page.evaluate(f"{card}.querySelector('.job-warnings').hidden")  # a page read whole
            pdf_url = await page.evaluate(f"{card}.querySelector('a.pdf').href")
            pdf = http.request("GET", pdf_url)
            assert pdf.status == 200 and pdf.data.startswith(b"%PDF"), pdf_url

            # A two-page scan dropped on the drop zone, as from a file manager: a card of its own, both pages.
            x, y = await page.evaluate("(() => { const r = document.querySelector('#drop').getBoundingClientRect(); "
                                       "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
            dragged = {"items": [], "files": [str(two_pages)], "dragOperationsMask": 1}
            for kind in ("dragEnter", "dragOver", "drop"):
                await page.send("Input.dispatchDragEvent", type=kind, x=x, y=y, data=dragged)
            dropped = f"[...document.querySelectorAll('.job')].find(c => c.querySelector('.filename').textContent " \
                      f"=== {js(two_pages.name)})"
            await page.wait_for(f"{dropped}?.dataset.state === 'completed'", 240, "the dropped scan to complete")
            assert await page.evaluate(f"{dropped}.querySelector('.progress-text').textContent") == "3 of 3 pages"
            text = " ".join((await page.evaluate(f"{dropped}.querySelector('.text').textContent")).split()).lower()
            assert "page 1" in text and "page 2" in text and "minutes of the board" in text and "next meeting" in text
            warned = await page.evaluate(f"{dropped}.querySelector('.job-warnings').innerText")
            assert "page 3: no text was found on the page (empty_page)" in warned, warned

            # The list refreshes when the job ends; a search finds the document by a word of its text.
            rows = "[...document.querySelectorAll('#recent tbody tr')]"
            await page.wait_for(f"{rows}.some(r => r.textContent.includes({js(scan.name)}) "
                                "&& r.querySelector('.state').textContent === 'completed')", 30,
                                "the document in the recent list")
            await page.evaluate("document.querySelector('#q').value = 'harbour'")
            await page.evaluate("document.querySelector('#search').requestSubmit()")
            snippet = await page.wait_for(f"{rows}.map(r => r.querySelector('.snippet')?.textContent).find(Boolean)",
                                          30, "a search hit with its snippet")
            assert "harbour" in snippet.lower()
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

            # A document from the list opens in a card of its own, text included (its first card closed first).
            harbour = f"[...document.querySelectorAll('.job')].find(c => c.querySelector('.filename').textContent " \
                      f"=== {js(scan.name)})"
            await page.evaluate(f"{harbour}.querySelector('.close').click()")
            assert await page.evaluate(f"!{harbour}")
            await page.evaluate(f"{rows}[0].querySelector('button').click()")
            await page.wait_for(f"{harbour}?.dataset.state === 'completed' "
                                f"&& {harbour}.querySelector('.text').textContent.includes('harbour')", 30,
                                "the listed document to open")
            trouble = problems(page, stack.gateway_url + "/function/list")
            assert not trouble, trouble
            loaded = {r["url"].removeprefix(stack.gateway_url) for r in responses(page)}
            assert "/favicon.ico" not in loaded

    asyncio.run(drive())
    assert shot.read_bytes().startswith(b"\x89PNG")
    # The README's picture of the page: made once, kept in the repository (delete it to make a new one).
    readme_shot = REPO / "docs" / "ui.png"
    if not readme_shot.exists():
        shutil.copyfile(shot, readme_shot)
