// batchd dashboard: live progress by polling the page's JSON twin (?format=json). No build step.
"use strict";

const POLL_MS = 1000;
const KINDS = ["succeeded", "errored", "canceled", "expired"];

function paint(root, batch, kind) {
  const wire = root.querySelector("[data-wire-status]");
  if (wire && kind && kind.status) wire.textContent = kind.status;
  const c = batch.request_counts;
  const total = c.processing + KINDS.reduce((n, k) => n + c[k], 0);
  for (const k of KINDS) {
    const seg = root.querySelector(`[data-seg="${k}"]`);
    if (seg) seg.style.width = total ? `${(100 * c[k]) / total}%` : "0%";
  }
  const bar = root.querySelector("[data-bar]");
  if (bar) bar.title = `${total - c.processing} of ${total} done`;
  for (const k of ["processing", ...KINDS]) {
    const el = root.querySelector(`[data-count="${k}"]`);
    if (!el) continue;
    el.querySelector("b").textContent = c[k];
    el.classList.toggle("zero", !c[k]);
  }
  const status = root.querySelector("[data-status]");
  if (status) {
    status.textContent = batch.processing_status.replace("_", " ");
    status.className = `status ${batch.processing_status}`;
  }
}

async function fetchTwin() {
  const url = new URL(location.href);
  url.searchParams.set("format", "json");
  const res = await fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

function pollList(table) {
  const tick = async () => {
    let data;
    try { data = await fetchTwin(); } catch { return schedule(); }
    const rows = new Map([...table.querySelectorAll("tr[data-batch-id]")].map((r) => [r.dataset.batchId, r]));
    const onFirstPage = !new URL(location.href).searchParams.has("after_id");
    if (onFirstPage && data.batches.some((b) => !rows.has(b.id))) return location.reload();
    // Usage still being summed (usage.Budget): each poll sums more; show it once it is whole.
    const summing = document.querySelector("[data-usage-summed=false]");
    if (summing && data.usage.summed) return location.reload();
    if (summing) return schedule();
    for (const b of data.batches) {
      const row = rows.get(b.id);
      if (row) paint(row, b, b.kind);
    }
    if (data.batches.some((b) => b.processing_status !== "ended")) schedule();
    else setTimeout(tick, POLL_MS * 5);
  };
  const schedule = () => setTimeout(tick, POLL_MS);
  schedule();
}

const NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

function paintSpeed(speed) {
  const rate = (v) => (v === null || v === undefined ? "—" : NUMBER.format(v)) + " req/s";
  const text = {
    requests_per_second: rate(speed.requests_per_second),
    average_per_second: rate(speed.average_per_second),
    eta_seconds: duration(speed.eta_seconds),
    elapsed_seconds: duration(speed.elapsed_seconds),
  };
  for (const [field, value] of Object.entries(text)) {
    const el = document.querySelector(`[data-speed="${field}"]`);
    if (el) el.textContent = value;
  }
  const line = document.querySelector("[data-chart-line]");
  if (line) line.setAttribute("points", speed.chart.points);
  const span = document.querySelector("[data-chart-span]");
  if (span) span.textContent = duration(speed.chart.seconds);
}

function pollBatch(section) {
  const tick = async () => {
    let data;
    try { data = await fetchTwin(); } catch { return setTimeout(tick, POLL_MS); }
    paint(section, data.batch, data.kind);
    if (data.speed) paintSpeed(data.speed);
    // The page's actions and the result list depend on the status: re-render when it moves.
    if (data.batch.processing_status !== section.dataset.statusValue) return location.reload();
    if (data.batch.processing_status !== "ended") setTimeout(tick, POLL_MS);
  };
  if (section.dataset.statusValue !== "ended") setTimeout(tick, POLL_MS);
}

function kib(bytes) {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

// New batch: the dropped or picked file's bytes go as they are, with the page's CSRF token in a
// header (dashboard/upload.py says why not a form); a bad file comes back as its problems, one a line.
function setupUpload(section) {
  const input = section.querySelector("input[type=file]");
  const drop = section.querySelector("[data-drop]");
  const status = section.querySelector("[data-upload-status]");
  const problems = section.querySelector("[data-problems]");
  const list = section.querySelector("[data-problem-list]");
  let busy = false;
  const send = async (file) => {
    if (!file || busy) return;
    busy = true;
    section.classList.add("busy");
    problems.hidden = true;
    list.replaceChildren();
    status.textContent = `Checking and creating from ${file.name} (${kib(file.size)})…`;
    try {
      const res = await fetch(`/batches/new?name=${encodeURIComponent(file.name)}`, {
        method: "POST",
        body: file,
        credentials: "same-origin",
        headers: { "content-type": "application/x-ndjson", "x-csrf-token": section.dataset.csrf, accept: "application/json" },
      });
      const data = await res.json().catch(() => null);
      if (res.ok && data) {
        const n = data.batches.length;
        status.textContent = `Created ${n} batch${n === 1 ? "" : "es"} of ${data.requests} requests. Opening…`;
        location.assign(data.location);
        return;
      }
      const lines = ((data && data.error && data.error.message) || `The server answered ${res.status}.`).split("\n");
      status.textContent = lines[0];
      for (const line of lines.slice(1)) {
        const item = document.createElement("li");
        item.textContent = line;
        list.append(item);
      }
      problems.hidden = lines.length < 2;
    } catch (err) {
      status.textContent = `The upload failed: ${err.message}`;
    } finally {
      busy = false;
      section.classList.remove("busy");
      input.value = "";
    }
  };
  input.addEventListener("change", () => send(input.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    send(event.dataTransfer.files[0]);
  });
}

function pollUpstreams(table) {
  const tick = async () => {
    let data;
    try { data = await fetchTwin(); } catch { return setTimeout(tick, POLL_MS * 5); }
    for (const r of data.routes) {
      const row = [...table.querySelectorAll("tr[data-route]")].find((tr) => tr.dataset.route === r.route);
      if (!row) continue;
      row.querySelector('[data-field="in_flight"]').textContent = r.in_flight;
      row.querySelector('[data-field="calls"]').textContent = r.calls.toLocaleString("en-US");
      const learnt = row.querySelector('[data-field="adaptive_limit"]');
      if (learnt && r.adaptive_limit !== null) learnt.textContent = r.adaptive_limit;
    }
    setTimeout(tick, POLL_MS * 5);
  };
  setTimeout(tick, POLL_MS * 5);
}

document.addEventListener("DOMContentLoaded", () => {
  // The page's Content-Security-Policy allows no inline style: bars get their widths from here.
  for (const seg of document.querySelectorAll("[data-seg][data-width]")) {
    seg.style.width = `${seg.dataset.width}%`;
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  const table = document.querySelector("table.batches[data-poll]");
  if (table) pollList(table);
  const section = document.querySelector("section.batch[data-poll]");
  if (section) pollBatch(section);
  const upload = document.querySelector("[data-upload]");
  if (upload) setupUpload(upload);
  const routes = document.querySelector("table[data-upstreams]");
  if (routes) pollUpstreams(routes);
});
