// The page's behaviour: upload, follow each job by polling its status, list and search recent documents.
// Everything goes through the public HTTP API (docs/openapi.yaml) of the gateway that served this page.
"use strict";

const KEY_ITEM = "ocr-api-key";          // sessionStorage: the key lives as long as the tab
const FINAL = new Set(["completed", "failed"]);
const POLL_MS = 1000;                    // status polls while a job runs (status allows 50 per second)
const UPLOADS_AT_ONCE = 2;
const LIST_LIMIT = 15;

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
// carrying the service's error.message.
async function api(path, options = {}) {
  const key = apiKey();
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
    const type = response.headers.get("Content-Type") || "";
    const body = type.includes("application/json") ? await response.json().catch(() => null) : null;
    if (!response.ok) {
      const error = body && body.error;
      throw new ApiError(response.status, error ? error.code : "http_" + response.status,
                         error && error.message ? error.message : `${response.status} ${response.statusText}`);
    }
    return body;
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

// --- the key ---------------------------------------------------------------------------------

function renderKeyState() {
  const key = apiKey();
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

function useKey(event) {
  event.preventDefault();
  const key = $("#key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_ITEM, key);
  renderKeyState();
  showMessage("");
  refreshList();
}

function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
  renderKeyState();
  $("#recent tbody").replaceChildren();
  $("#more").hidden = true;
}

// --- one document's card ---------------------------------------------------------------------

const cards = new Map();   // job id -> card element

function newCard(filename) {
  const card = $("#job-template").content.firstElementChild.cloneNode(true);
  $(".filename", card).textContent = filename;
  $(".close", card).addEventListener("click", () => {
    card.dataset.closed = "true";
    cards.delete(card.dataset.job);
    card.remove();
    $("#jobs-empty").hidden = $("#jobs").children.length > 0;
  });
  $("#jobs").prepend(card);
  $("#jobs-empty").hidden = true;
  return card;
}

function setState(card, state, detail = "") {
  card.dataset.state = state;
  $(".state", card).textContent = state;
  $(".progress-text", card).textContent = detail;
}

function setError(card, text) {
  const error = $(".job-error", card);
  error.textContent = text;
  error.hidden = !text;
}

function renderStatus(card, status) {
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
    const links = $(".links", card);
    for (const [name, selector] of [["searchable_pdf", ".pdf"], ["hocr", ".hocr"]]) {
      const link = $(selector, links);
      link.hidden = !outputs[name];
      if (outputs[name]) link.href = outputs[name];
    }
    links.hidden = !outputs.searchable_pdf && !outputs.hocr;
    const text = $(".text", card);
    // Pages are separated by a form feed; the text is only ever set as text, never as markup.
    const pagesOf = (status.text || "").split("\n\f\n");
    text.textContent = pagesOf.length > 1
      ? pagesOf.map((page, i) => `── page ${i + 1} ──\n${page}`).join("\n\n")
      : pagesOf[0];
    text.hidden = false;
  }
}

// Polls the job until it is completed or failed (or its card is closed).
async function follow(card, jobId) {
  card.dataset.job = jobId;
  cards.set(jobId, card);
  while (card.dataset.closed !== "true") {
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
      setError(card, error.message);
      return;
    }
    setError(card, "");
    renderStatus(card, status);
    if (FINAL.has(status.status)) {
      refreshList();
      return;
    }
    await sleep(POLL_MS);
  }
}

function openJob(jobId, filename) {
  const open = cards.get(jobId);
  if (open) {
    open.scrollIntoView({block: "nearest"});
    return;
  }
  const card = newCard(filename);
  setState(card, "loading");
  follow(card, jobId);
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
    setError(card, error.message);
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

// --- recent documents ------------------------------------------------------------------------

let listCursor = null;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function listRow(item) {
  const row = document.createElement("tr");
  row.dataset.job = item.job_id;
  const name = cell(item.filename);
  if (item.snippet) {
    const snippet = document.createElement("div");
    snippet.className = "snippet muted";
    snippet.textContent = item.snippet;
    name.append(snippet);
  }
  const state = cell(item.status);
  state.className = "state";
  state.dataset.state = item.status;
  const open = document.createElement("button");
  open.type = "button";
  open.textContent = "Open";
  open.addEventListener("click", () => openJob(item.job_id, item.filename));
  const action = document.createElement("td");
  action.append(open);
  row.append(name, state, cell(item.page_count ?? ""), cell(new Date(item.created_at).toLocaleString()), action);
  return row;
}

let listTicket = 0;

async function refreshList(more = false) {
  if (!apiKey()) return;
  const params = new URLSearchParams({limit: String(LIST_LIMIT)});
  const q = $("#q").value.trim();
  if (q) params.set("q", q);
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
  const rows = page.items.map(listRow);
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  listCursor = page.next_cursor;
  $("#more").hidden = !listCursor;
  const notes = [];
  if (!body.children.length) notes.push(q ? "No document contains every word." : "No documents yet.");
  if (page.ignored_terms && page.ignored_terms.length) notes.push(`Not searchable: ${page.ignored_terms.join(", ")}.`);
  $("#recent-note").textContent = notes.join(" ");
}

// --- wiring ----------------------------------------------------------------------------------

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
  refreshList();
}

wire();
