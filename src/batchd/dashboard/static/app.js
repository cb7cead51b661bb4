// batchd dashboard: live progress by polling the page's JSON twin (?format=json). No build step.
"use strict";

const POLL_MS = 1000;
const KINDS = ["succeeded", "errored", "canceled", "expired"];

function paint(root, batch) {
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
    for (const b of data.batches) {
      const row = rows.get(b.id);
      if (row) paint(row, b);
    }
    if (data.batches.some((b) => b.processing_status !== "ended")) schedule();
    else setTimeout(tick, POLL_MS * 5);
  };
  const schedule = () => setTimeout(tick, POLL_MS);
  schedule();
}

function pollBatch(section) {
  const tick = async () => {
    let data;
    try { data = await fetchTwin(); } catch { return setTimeout(tick, POLL_MS); }
    paint(section, data.batch);
    // The page's actions and the result list depend on the status: re-render when it moves.
    if (data.batch.processing_status !== section.dataset.statusValue) return location.reload();
    if (data.batch.processing_status !== "ended") setTimeout(tick, POLL_MS);
  };
  if (section.dataset.statusValue !== "ended") setTimeout(tick, POLL_MS);
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
});
