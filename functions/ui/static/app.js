// The page's behaviour: upload, follow each job by polling its status, download, re-process and delete documents,
// view their pages with the recognised words, list and search recent documents.
// Everything goes through the public HTTP API (docs/openapi.yaml) of the gateway that served this page.
"use strict";

const KEY_ITEM = "ocr-api-key";          // sessionStorage: the key lives as long as the tab
const CARDS_ITEM = "ocr-open-cards";     // sessionStorage: the cards open in this tab, so a reload keeps them
const FINAL = new Set(["completed", "failed"]);
const RUNNING = new Set(["pending", "processing"]);
const POLL_MS = 1000;                    // status polls while a job runs (status allows 50 per second)
const LIST_POLL_MS = 3000;               // the list refreshes itself while a listed document is being read
const UPLOADS_AT_ONCE = 2;
const LIST_LIMIT = 15;
const CONFIRM_MS = 5000;                 // a Delete button waits this long for its confirming second press
const SVG = "http://www.w3.org/2000/svg";

const $ = (selector, root = document) => root.querySelector(selector);

// --- the API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One call; a 429 waits its Retry-After and tries again (a few times), any other error becomes an ApiError
// carrying the service's error code and message. `as` is "json" (default), "blob" or "response".
async function api(path, options = {}, as = "json", key = apiKey()) {
  if (!key) throw new ApiError(0, "no_key", "Paste an API key first.");
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(path, {...options, headers: {"Authorization": `Bearer ${key}`, ...(options.headers || {})}});
    } catch {
      throw new ApiError(0, "unreachable", "The gateway did not answer; is it running?");
    }
    if (response.status === 429 && attempt < 5) {
      const wait = Number(response.headers.get("Retry-After")) || 1;
      await sleep(Math.min(wait, 30) * 1000);
      continue;
    }
    if (!response.ok) {
      const type = response.headers.get("Content-Type") || "";
      const body = type.includes("application/json") ? await response.json().catch(() => null) : null;
      const error = body && body.error;
      const failure = new ApiError(response.status, error ? error.code : "http_" + response.status,
                                   error && error.message ? error.message : `${response.status} ${response.statusText}`);
      if (response.status === 401 && key === apiKey()) keyRefused(failure);
      throw failure;
    }
    if (as === "response") return response;
    if (as === "blob") return response.blob();
    if (response.status === 204) {
      await response.text();   // read to its end, so the browser does not count the answer as cut short
      return null;
    }
    return response.json();
  }
}

// --- messages --------------------------------------------------------------------------------

function showMessage(text) {
  const message = $("#message");
  message.textContent = text;
  message.hidden = !text;
}

function showError(error) {
  showMessage(error instanceof ApiError ? error.message : String(error));
}

// Said to screen readers (a polite live region), for what changes away from where the focus is.
function announce(text) {
  $("#notice").textContent = text;
}

// --- the key ---------------------------------------------------------------------------------

// An admin key lists every owner's documents: once an answer shows another owner's, the page shows whose each
// document is and lets the admin list one owner's alone. A user's key only ever sees its own.
let seesEveryOwner = false;

function renderKeyState() {
  const key = apiKey();
  seesEveryOwner = false;
  for (const element of document.querySelectorAll(".owner-only")) element.hidden = true;
  // Only the key's public id (ocr_<id>_<secret>) is ever shown.
  const id = /^ocr_([0-9a-f]{12})_/.exec(key);
  $("#key-state").textContent = key ? `Using key ${id ? id[1] : "(pasted)"} in this tab.`
                                    : "Paste your key once: it stays in this tab only.";
  $("#forget").hidden = !key;
  $("#key").value = "";
  $("#key").required = !key;
  $("#key").placeholder = key ? "another key…" : "ocr_…";
  document.body.classList.toggle("no-key", !key);
}

// A key is kept only once the service took it: a refused one is never "in use".
async function useKey(event) {
  event.preventDefault();
  const key = $("#key").value.trim();
  if (!key) return;
  try {
    await api("/function/list?limit=1", {}, "json", key);
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      $("#key").value = "";
      showError(error);
      $("#key").focus();
      return;
    }
    // Passing trouble (the gateway away, a 503): the key may be good; keep it and say what happened.
    showError(error);
  }
  const changed = key !== apiKey();
  sessionStorage.setItem(KEY_ITEM, key);
  if (changed) closeAllCards();
  renderKeyState();
  showMessage("");
  refreshList();
}

// The service refused the key in use (revoked, expired): forget it rather than keep failing with it.
function keyRefused(error) {
  sessionStorage.removeItem(KEY_ITEM);
  renderKeyState();
  showMessage(error.message);
}

function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
  closeAllCards();
  closeViewer();
  renderKeyState();
  $("#recent tbody").replaceChildren();
  $("#more").hidden = true;
  $("#key").focus();
}

// --- downloads -------------------------------------------------------------------------------

// The name the service gives a download (Content-Disposition: filename* first, RFC 6266), else a fallback.
function filenameOf(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) {
    try { return decodeURIComponent(star[1]); } catch { /* a malformed name: the plain one below */ }
  }
  const plain = /filename="([^"]*)"/i.exec(header);
  return plain ? plain[1] : fallback;
}

// A link cannot carry the key, so the file is requested with it and handed to the browser as a blob.
async function download(id, kind, button) {
  button.disabled = true;
  try {
    const response = await api(`/function/documents/${encodeURIComponent(id)}/download/${kind}`, {}, "response");
    const name = filenameOf(response, `download.${kind}`);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    announce(`Downloaded ${name}.`);
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
}

// --- deleting --------------------------------------------------------------------------------

// A first press asks for a second one (the button says so), a second within CONFIRM_MS deletes.
function confirmThen(button, label, action) {
  if (button.dataset.armed === "true") {
    button.dataset.armed = "false";
    action();
    return;
  }
  button.dataset.armed = "true";
  const original = button.textContent;
  button.textContent = "Press again to delete";
  button.setAttribute("aria-label", `Press again to delete ${label}`);
  setTimeout(() => {
    if (button.dataset.armed === "true") {
      button.dataset.armed = "false";
      button.textContent = original;
      button.removeAttribute("aria-label");
    }
  }, CONFIRM_MS);
}

async function deleteDocument(documentId, filename) {
  try {
    await api(`/function/documents/${encodeURIComponent(documentId)}`, {method: "DELETE"});
  } catch (error) {
    showError(error);
    return false;
  }
  for (const card of [...cards.values()]) {
    if (card.dataset.document === documentId) removeCard(card);
  }
  if (viewer.document === documentId) closeViewer();
  announce(`Deleted ${filename}.`);
  refreshList();
  return true;
}

// --- one document's card ---------------------------------------------------------------------

const cards = new Map();   // job id -> card element

function saveCards() {
  const open = [...$("#jobs").children].filter((c) => c.dataset.job)
    .map((c) => ({job: c.dataset.job, name: $(".filename", c).textContent}));
  sessionStorage.setItem(CARDS_ITEM, JSON.stringify(open.reverse()));
}

function removeCard(card) {
  card.dataset.closed = "true";
  cards.delete(card.dataset.job);
  card.remove();
  $("#jobs-empty").hidden = $("#jobs").children.length > 0;
  saveCards();
}

function closeAllCards() {
  for (const card of [...$("#jobs").children]) removeCard(card);
}

function newCard(filename) {
  const card = $("#job-template").content.firstElementChild.cloneNode(true);
  $(".filename", card).textContent = filename;
  $(".close", card).setAttribute("aria-label", `Close ${filename}`);
  $("progress", card).setAttribute("aria-label", `Progress of ${filename}`);
  $(".close", card).addEventListener("click", () => {
    // The focus goes to the next card, or the section's heading: never lost to the page's top.
    const next = card.nextElementSibling || card.previousElementSibling;
    removeCard(card);
    (next ? $(".filename", next) : $("#jobs-title")).focus();
  });
  for (const button of card.querySelectorAll(".download")) {
    button.setAttribute("aria-label", `Download ${button.textContent} of ${filename}`);
    button.addEventListener("click", () => download(card.dataset.job, button.dataset.kind, button));
  }
  $(".view", card).addEventListener("click", () => openViewer(card.dataset.job, filename));
  const del = $(".delete", card);
  del.addEventListener("click", () => confirmThen(del, filename, async () => {
    const next = card.nextElementSibling || card.previousElementSibling;
    if (await deleteDocument(card.dataset.document, filename)) {
      (next && next.isConnected ? $(".filename", next) : $("#jobs-title")).focus();
    }
  }));
  $(".reprocess", card).addEventListener("submit", (event) => {
    event.preventDefault();
    reprocess(card);
  });
  $("#jobs").prepend(card);
  $("#jobs-empty").hidden = true;
  return card;
}

function setState(card, state, detail = "") {
  card.dataset.state = state;
  $(".state", card).textContent = state;
  $(".progress-text", card).textContent = detail;
  // A bar only while something moves: a failed or refused card says why instead.
  $("progress", card).hidden = !(RUNNING.has(state) || ["queued", "uploading", "loading"].includes(state));
}

function setError(card, text) {
  const error = $(".job-error", card);
  error.textContent = text;
  error.hidden = !text;
}

function clearResult(card) {
  $(".actions", card).hidden = true;
  $(".reprocess", card).hidden = true;
  $(".text", card).hidden = true;
  $(".job-warnings", card).hidden = true;
  setError(card, "");
}

function renderStatus(card, status) {
  card.dataset.document = status.document_id;
  const progress = $("progress", card);
  const total = status.page_count;
  if (status.status === "completed") {
    progress.max = 1;
    progress.value = 1;
  } else if (total) {
    progress.max = total;
    progress.value = status.pages_done;
  } else {
    progress.removeAttribute("value");   // indeterminate until the document is opened
  }
  const pages = total ? `${status.pages_done} of ${total} page${total === 1 ? "" : "s"}` : "";
  setState(card, status.status, pages);
  const final = FINAL.has(status.status);
  // Delete and re-process once the job is final; downloads and the page view once it completed.
  $(".actions", card).hidden = !final;
  $(".reprocess", card).hidden = !final;
  for (const button of card.querySelectorAll(".download, .view")) button.hidden = status.status !== "completed";
  if (status.status === "failed" && status.error) {
    setError(card, `${status.error.message || "failed"} (${status.error.code})`);
  }
  if (status.status === "completed") {
    // What may be missing from the text: each warning's code and message, as text only.
    const warnings = $(".job-warnings", card);
    warnings.replaceChildren(...(status.warnings || []).map((w) => {
      const item = document.createElement("li");
      item.textContent = `${w.message} (${w.code})`;
      return item;
    }));
    warnings.hidden = !(status.warnings || []).length;
    const outputs = status.outputs || {};
    $(".pdf", card).hidden = !outputs.searchable_pdf;
    $(".hocr", card).hidden = !outputs.hocr;
    const text = $(".text", card);
    // Pages are separated by a form feed; the text is only ever set as text, never as markup.
    const pagesOf = (status.text || "").split("\n\f\n");
    text.textContent = pagesOf.length > 1
      ? pagesOf.map((page, i) => `── page ${i + 1} ──\n${page}`).join("\n\n")
      : pagesOf[0];
    text.setAttribute("aria-label", `Recognised text of ${$(".filename", card).textContent}`);
    text.hidden = false;
  }
}

// Polls the job until it is completed or failed (or its card is closed or follows another job).
async function follow(card, jobId) {
  if (card.dataset.job) cards.delete(card.dataset.job);
  card.dataset.job = jobId;
  cards.set(jobId, card);
  saveCards();
  while (card.dataset.closed !== "true" && card.dataset.job === jobId) {
    let status;
    try {
      status = await api(`/function/status/${encodeURIComponent(jobId)}`);
    } catch (error) {
      if (error.status === 503 || error.status === 0) {   // passing trouble: keep polling
        setError(card, error.message);
        await sleep(POLL_MS * 3);
        continue;
      }
      setState(card, "error");
      setError(card, `${error.message} (${error.code})`);
      return;
    }
    if (card.dataset.job !== jobId) return;
    setError(card, "");
    renderStatus(card, status);
    if (FINAL.has(status.status)) {
      announce(`${$(".filename", card).textContent}: ${status.status}.`);
      refreshList();
      return;
    }
    await sleep(POLL_MS);
  }
}

function openJob(jobId, filename) {
  const open = cards.get(jobId);
  const card = open || newCard(filename);
  if (!open) {
    setState(card, "loading");
    follow(card, jobId);
  }
  card.scrollIntoView({block: "nearest"});
  $(".filename", card).focus();
}

async function reprocess(card) {
  const form = new FormData();
  const lang = $(".relang", card).value.trim();
  if (lang) form.append("lang", lang);
  const button = $(".reprocess button", card);
  button.disabled = true;
  try {
    const accepted = await api(`/function/documents/${encodeURIComponent(card.dataset.document)}/reprocess`,
                               {method: "POST", body: form});
    clearResult(card);
    setState(card, accepted.status);
    // The form just used is hidden until the new job ends: the focus goes to the card, not the page's top.
    $(".filename", card).focus();
    announce(`${$(".filename", card).textContent}: read again${lang ? ` in ${lang}` : ""}.`);
    follow(card, accepted.job_id);
  } catch (error) {
    setError(card, `${error.message} (${error.code})`);
  } finally {
    button.disabled = false;
  }
}

// --- uploads ---------------------------------------------------------------------------------

async function upload(file, card) {
  const form = new FormData();
  form.append("file", file, file.name);
  const lang = $("#lang").value.trim();
  if (lang) form.append("lang", lang);
  setState(card, "uploading");
  try {
    const accepted = await api("/function/upload", {method: "POST", body: form});
    setState(card, accepted.status);
    await follow(card, accepted.job_id);
  } catch (error) {
    setState(card, "refused");
    setError(card, `${error.message} (${error.code})`);
  }
}

async function uploadAll(files) {
  if (!apiKey()) {
    showMessage("Paste an API key first.");
    return;
  }
  showMessage("");
  const queue = Array.from(files).map((file) => [file, newCard(file.name)]);
  queue.forEach(([, card]) => setState(card, "queued"));
  // A few at a time: each upload is a request the gateway buffers, and the upload function is rate limited.
  const worker = async () => {
    while (queue.length) {
      const [file, card] = queue.shift();
      await upload(file, card);
    }
  };
  await Promise.all(Array.from({length: UPLOADS_AT_ONCE}, worker));
}

// --- the document view: each page's picture with the recognised words over it ----------------

const viewer = {job: null, document: null, name: "", page: 1, pages: 1, words: [], width: 1, height: 1,
                hits: new Set(), terms: [], image: null};

function closeViewer() {
  $("#viewer").hidden = true;
  if (viewer.image) URL.revokeObjectURL(viewer.image);
  viewer.job = viewer.document = viewer.image = null;
}

async function openViewer(jobId, filename) {
  viewer.job = jobId;
  viewer.name = filename;
  viewer.terms = [];
  $("#find-q").value = "";
  $("#find-results").replaceChildren();
  $("#find-note").textContent = "";
  $("#viewer-title").textContent = `Pages of ${filename}`;
  $("#viewer").hidden = false;
  $("#viewer-title").focus();
  await showPage(1);
}

function confidenceClass(confidence) {
  if (confidence === null || confidence === undefined) return "conf-layer";
  return confidence >= 90 ? "conf-high" : confidence >= 60 ? "conf-mid" : "conf-low";
}

const normalise = (word) => word.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");

async function showPage(number) {
  const jobId = viewer.job;
  $("#page-caption").textContent = "Loading…";
  let status;
  try {
    status = await api(`/function/status/${encodeURIComponent(jobId)}?include=words&page_from=${number}&page_to=${number}`);
  } catch (error) {
    showError(error);
    return;
  }
  if (viewer.job !== jobId) return;
  const [page] = status.pages || [];
  viewer.document = status.document_id;
  viewer.page = number;
  viewer.pages = status.page_count || 1;
  viewer.words = (page && page.words) || [];
  viewer.width = (page && page.width) || 1;
  viewer.height = (page && page.height) || 1;
  $("#page-number").textContent = `Page ${number} of ${viewer.pages}`;
  $("#page-prev").disabled = number <= 1;
  $("#page-next").disabled = number >= viewer.pages;
  drawWords();
  const known = viewer.words.filter((w) => typeof w.confidence === "number");
  const low = known.filter((w) => w.confidence < 60).length;
  const mean = known.length ? Math.round(known.reduce((sum, w) => sum + w.confidence, 0) / known.length) : null;
  $("#page-caption").textContent = `${viewer.words.length} words` +
    (mean === null ? " (from the file's own text layer)" : `, mean confidence ${mean}, ${low} under 60`);
  try {
    const picture = await api(`/function/documents/${encodeURIComponent(jobId)}/pages/${number}/preview`, {}, "blob");
    if (viewer.job !== jobId || viewer.page !== number) return;
    if (viewer.image) URL.revokeObjectURL(viewer.image);
    viewer.image = URL.createObjectURL(picture);
    const image = $("#page-image");
    image.src = viewer.image;
    image.alt = `Page ${number} of ${viewer.name}`;
  } catch (error) {
    showError(error);
  }
}

// Each word as a box (its polygon on a straightened page) in page pixels; the SVG scales them with the picture.
function drawWords() {
  const layer = $("#page-words");
  layer.setAttribute("viewBox", `0 0 ${viewer.width} ${viewer.height}`);
  layer.setAttribute("preserveAspectRatio", "none");
  layer.toggleAttribute("hidden", !$("#show-words").checked);   // an SVG element has no `hidden` property
  const terms = new Set(viewer.terms);
  let hits = 0;
  const shapes = viewer.words.map((word) => {
    const shape = document.createElementNS(SVG, word.polygon ? "polygon" : "rect");
    if (word.polygon) {
      shape.setAttribute("points", word.polygon.map(([x, y]) => `${x},${y}`).join(" "));
    } else {
      shape.setAttribute("x", word.left);
      shape.setAttribute("y", word.top);
      shape.setAttribute("width", word.width);
      shape.setAttribute("height", word.height);
    }
    const hit = terms.size > 0 && terms.has(normalise(word.text));
    if (hit) hits++;
    shape.setAttribute("class", `word ${confidenceClass(word.confidence)}${hit ? " hit" : ""}`);
    const title = document.createElementNS(SVG, "title");
    title.textContent = typeof word.confidence === "number"
      ? `${word.text} (confidence ${Math.round(word.confidence)})` : word.text;
    shape.append(title);
    return shape;
  });
  layer.replaceChildren(...shapes);
  layer.setAttribute("aria-label", `Recognised words on page ${viewer.page}` + (terms.size ? `, ${hits} hits` : ""));
}

// Which pages hold every term: the pages' text, 100 pages an answer, then the hits drawn on the page shown.
async function findInDocument(event) {
  event.preventDefault();
  const query = $("#find-q").value.trim();
  viewer.terms = query.split(/\s+/).map(normalise).filter(Boolean);
  const results = $("#find-results");
  results.replaceChildren();
  drawWords();
  if (!viewer.terms.length) {
    $("#find-note").textContent = "";
    return;
  }
  const found = [];
  let from = 1;
  while (from) {
    let answer;
    try {
      answer = await api(`/function/status/${encodeURIComponent(viewer.job)}?include=pages&page_from=${from}`);
    } catch (error) {
      showError(error);
      return;
    }
    for (const page of answer.pages || []) {
      const words = new Set(page.text.split(/\s+/).map(normalise));
      if (viewer.terms.every((t) => words.has(t))) found.push(page);
    }
    from = answer.next_page_from;
  }
  results.replaceChildren(...found.map((page) => {
    const item = document.createElement("li");
    const go = document.createElement("button");
    go.type = "button";
    go.className = "linkish";
    go.textContent = `Page ${page.page}`;
    go.addEventListener("click", () => showPage(page.page));
    const excerpt = document.createElement("span");
    excerpt.className = "muted";
    excerpt.textContent = " " + snippetOf(page.text, viewer.terms[0]);
    item.append(go, excerpt);
    return item;
  }));
  $("#find-note").textContent = found.length
    ? `Found on ${found.length} page${found.length === 1 ? "" : "s"}.` : "No page holds every word.";
  if (found.length && !found.some((p) => p.page === viewer.page)) await showPage(found[0].page);
}

function snippetOf(text, term) {
  const flat = text.replace(/\s+/g, " ");
  const at = flat.toLowerCase().indexOf(term);
  const start = Math.max(0, at - 30);
  return (start > 0 ? "…" : "") + flat.slice(start, start + 90) + (flat.length > start + 90 ? "…" : "");
}

// --- recent documents ------------------------------------------------------------------------

let listCursor = null;
let listTimer = null;

function cell(text, label) {
  const td = document.createElement("td");
  td.textContent = text;
  if (label) td.dataset.label = label;
  return td;
}

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", () => onClick(b));
  return b;
}

function listRow(item) {
  const row = document.createElement("tr");
  row.dataset.job = item.job_id;
  row.dataset.document = item.document_id;
  const name = cell(item.filename);
  name.className = "file";
  if (item.snippet) {
    const snippet = document.createElement("div");
    snippet.className = "snippet muted";
    snippet.textContent = item.snippet;
    const where = document.createElement("div");
    where.className = "hit-pages muted";
    name.append(snippet, where);
  }
  const state = cell(item.status, "Status");
  state.className = "state";
  state.dataset.state = item.status;
  const action = document.createElement("td");
  action.className = "row-actions";
  action.append(button("Open", `Open ${item.filename}`, () => openJob(item.job_id, item.filename)));
  if (item.status === "completed") {
    action.append(button("PDF", `Download the searchable PDF of ${item.filename}`,
                         (b) => download(item.job_id, "pdf", b)),
                  button("Text", `Download the text of ${item.filename}`, (b) => download(item.job_id, "text", b)));
  }
  if (FINAL.has(item.status)) {
    const del = button("Delete", `Delete ${item.filename}`, (b) => confirmThen(b, item.filename, async () => {
      const next = row.nextElementSibling || row.previousElementSibling;
      if (await deleteDocument(item.document_id, item.filename)) {
        (next && next.isConnected ? next.querySelector("button") : $("#recent-title")).focus();
      }
    }));
    action.append(del);
  }
  const owner = cell(item.owner_id || "none", "Owner");
  owner.className = "owner-only";
  owner.hidden = !seesEveryOwner;
  row.append(name, state, cell(item.page_count ?? "", "Pages"), owner,
             cell(new Date(item.created_at).toLocaleString(), "Uploaded"), action);
  return row;
}

// For a search, name the pages each hit is on: the job's pages' text, read once per listed document.
async function namePages(row, terms) {
  const where = $(".hit-pages", row);
  if (!where) return;
  try {
    const answer = await api(`/function/status/${encodeURIComponent(row.dataset.job)}?include=pages`);
    const pages = (answer.pages || []).filter((page) => {
      const words = new Set(page.text.split(/\s+/).map(normalise));
      return terms.some((t) => words.has(t));
    }).map((page) => page.page);
    if (pages.length) where.textContent = `on page${pages.length === 1 ? "" : "s"} ${pages.join(", ")}`;
  } catch {
    // The page names are a help: without them the row still says the document matched.
  }
}
let listTicket = 0;

function showOwners(items) {
  const mine = (/^ocr_([0-9a-f]{12})_/.exec(apiKey()) || [])[1];
  if (!seesEveryOwner && items.some((item) => item.owner_id !== mine)) {
    seesEveryOwner = true;
    for (const element of document.querySelectorAll(".owner-only")) element.hidden = false;
  }
}

async function refreshList(more = false) {
  if (!apiKey()) return;
  clearTimeout(listTimer);
  const params = new URLSearchParams({limit: String(LIST_LIMIT)});
  const q = $("#q").value.trim();
  if (q) params.set("q", q);
  const owner = $("#owner-filter").value.trim();
  if (seesEveryOwner && owner) params.set("owner", owner);
  if (more && listCursor) params.set("cursor", listCursor);
  let page;
  const body = $("#recent tbody");
  // Only the newest request may paint: an earlier search answering late must not cover a later one.
  const ticket = ++listTicket;
  try {
    page = await api(`/function/list?${params}`);
  } catch (error) {
    if (ticket !== listTicket) return;
    showError(error);
    if (!more) {
      // A refused or failed search must not leave the previous query's rows looking like its answer.
      body.replaceChildren();
      listCursor = null;
      $("#more").hidden = true;
      $("#recent-note").textContent = q ? "No results: the search was refused (see the message above)." : "";
    }
    return;
  }
  if (ticket !== listTicket) return;
  showMessage("");
  showOwners(page.items);
  // A refresh keeps the focus where the user is: on the same button of the same row, if it is still there.
  const focused = document.activeElement;
  const focusRow = focused && focused.closest && focused.closest("#recent tbody tr");
  const focusAt = focusRow ? [focusRow.dataset.document, [...focusRow.querySelectorAll("button")].indexOf(focused)] : null;
  const rows = page.items.map(listRow);
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  if (focusAt) {
    const again = [...body.children].find((r) => r.dataset.document === focusAt[0]);
    const target = again && again.querySelectorAll("button")[focusAt[1]];
    if (target) target.focus();
  }
  listCursor = page.next_cursor;
  $("#more").hidden = !listCursor;
  const notes = [];
  if (!body.children.length) notes.push(q ? "No document contains every word." : "No documents yet.");
  if (page.ignored_terms && page.ignored_terms.length) notes.push(`Not searchable: ${page.ignored_terms.join(", ")}.`);
  $("#recent-note").textContent = notes.join(" ");
  if (q) {
    const terms = q.split(/\s+/).map(normalise).filter(Boolean);
    rows.forEach((row) => namePages(row, terms));
  }
  // While a listed document is being read, the list follows it by itself (the first page only).
  if (!more && page.items.some((item) => RUNNING.has(item.status))) {
    listTimer = setTimeout(() => refreshList(), LIST_POLL_MS);
  }
}

// --- wiring ----------------------------------------------------------------------------------

function restoreCards() {
  let open = [];
  try {
    open = JSON.parse(sessionStorage.getItem(CARDS_ITEM) || "[]");
  } catch {
    open = [];
  }
  for (const {job, name} of open) {
    if (!job || cards.has(job)) continue;
    const card = newCard(name);
    setState(card, "loading");
    follow(card, job);
  }
}

function wire() {
  renderKeyState();
  $("#key-form").addEventListener("submit", useKey);
  $("#forget").addEventListener("click", forgetKey);
  $("#files").addEventListener("change", (event) => {
    const files = Array.from(event.target.files);
    event.target.value = "";      // the same file may be chosen again
    uploadAll(files);
  });
  const drop = $("#drop");
  // Dropped anywhere, a file must not replace the page; on the drop zone it is uploaded.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
  drop.addEventListener("dragover", () => drop.classList.add("over"));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    drop.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) uploadAll(event.dataTransfer.files);
  });
  $("#search").addEventListener("submit", (event) => {
    event.preventDefault();
    refreshList();
  });
  $("#clear-search").addEventListener("click", () => {
    $("#q").value = "";
    refreshList();
  });
  $("#more").addEventListener("click", () => refreshList(true));
  $("#viewer-close").addEventListener("click", () => {
    const card = cards.get(viewer.job);
    closeViewer();
    (card ? $(".view", card) : $("#jobs-title")).focus();
  });
  $("#page-prev").addEventListener("click", () => showPage(viewer.page - 1));
  $("#page-next").addEventListener("click", () => showPage(viewer.page + 1));
  $("#show-words").addEventListener("change", () => {
    $("#page-words").toggleAttribute("hidden", !$("#show-words").checked);
    $("#legend").hidden = !$("#show-words").checked;
  });
  $("#find").addEventListener("submit", findInDocument);
  if (apiKey()) restoreCards();
  refreshList();
}

wire();
