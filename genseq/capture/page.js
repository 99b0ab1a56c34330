// The genseq capture page: draw one line of handwriting per prompt with
// pointer events (mouse, pen, touch), then POST it to the local server, which
// appends it to the JSONL file. Points are [x, y, t] (CSS pixels from the
// pad's top-left corner, y downwards; t seconds since the line's first touch),
// plus pressure for pens and touch.
//
// The page lives at http://127.0.0.1:PORT/KEY/ (the address genseq capture
// prints): every request goes below that path and also sends the key in the
// X-Genseq-Token header; the server refuses requests without it.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = $("pad");
let state = null;      // the server's /api/state answer
let strokes = [];      // the line being drawn: list of strokes, each a list of points
let redoStack = [];    // strokes taken back by Undo, newest last
let active = null;     // pointerId of the stroke being drawn
let t0 = null;         // event timeStamp of the line's first point
let busy = false;

const round = (v, k) => Math.round(v * k) / k;

const KEY = decodeURIComponent(location.pathname.split("/")[1] || "");
const BASE = KEY ? "/" + encodeURIComponent(KEY) + "/" : "/";
const api = (path, init = {}) =>
  fetch(BASE + path, { ...init, headers: { ...(init.headers || {}), "X-Genseq-Token": KEY }, cache: "no-store" });

function point(ev) {
  const r = pad.getBoundingClientRect();
  const p = [round(ev.clientX - r.left, 100), round(ev.clientY - r.top, 100), round((ev.timeStamp - t0) / 1000, 1000)];
  if (ev.pointerType === "pen" || ev.pointerType === "touch") p.push(round(ev.pressure, 1000));
  return p;
}

// ---- drawing ----------------------------------------------------------------
function fitCanvas(c) {
  const r = c.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return [ctx, r.width, r.height];
}

function pathStrokes(ctx, lines, map) {
  ctx.lineCap = "round"; ctx.lineJoin = "round";
  for (const s of lines) {
    ctx.beginPath();
    s.forEach((p, i) => { const [x, y] = map(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    if (s.length === 1) { const [x, y] = map(s[0]); ctx.lineTo(x + 0.1, y); }
    ctx.stroke();
  }
}

function drawPad() {
  const [ctx, w, h] = fitCanvas(pad);
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#cde"; ctx.lineWidth = 1;  // a baseline guide at two thirds of the height
  ctx.beginPath(); ctx.moveTo(10, h * 2 / 3); ctx.lineTo(w - 10, h * 2 / 3); ctx.stroke();
  ctx.strokeStyle = "#111"; ctx.lineWidth = 2.5;
  pathStrokes(ctx, strokes, (p) => p);
}

// Scale `lines` to fit canvas `c` (the preview shows what the file holds, at any size).
function drawPreview(c, lines) {
  const [ctx, w, h] = fitCanvas(c);
  ctx.clearRect(0, 0, w, h);
  const pts = lines.flat();
  if (!pts.length) return;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), y0 = Math.min(...ys);
  const bw = Math.max(...xs) - x0 || 1, bh = Math.max(...ys) - y0 || 1;
  const k = Math.min((w - 12) / bw, (h - 12) / bh);
  ctx.strokeStyle = "#123"; ctx.lineWidth = 1.5;
  pathStrokes(ctx, lines, (p) => [6 + (p[0] - x0) * k, 6 + (p[1] - y0) * k]);
}

function refresh() {
  drawPad();
  drawPreview($("preview-live"), strokes);
  const last = state && state.last;
  drawPreview($("preview-last"), last ? last.strokes : []);
  $("last-text").textContent = last ? last.text : "(none yet)";
  $("undo").disabled = busy || !strokes.length;
  $("redo").disabled = busy || !redoStack.length;
  $("clear").disabled = busy || !strokes.length;
  $("submit").disabled = busy || !state;
  $("skip").disabled = busy || !state;
  $("redo-line").disabled = busy || !last;
}

function show(s) {
  state = s;
  $("prompt").textContent = s.prompt.text;
  $("file").textContent = s.file;
  $("progress").textContent = `${s.saved} saved now · ${s.lines} line${s.lines === 1 ? "" : "s"} in file · ` +
    `${s.covered}/${s.prompts} prompts written`;
  refresh();
}

function say(msg, error = false) {
  $("status").textContent = msg;
  $("status").className = error ? "error" : "";
}

// ---- pointer input ------------------------------------------------------------
pad.addEventListener("pointerdown", (ev) => {
  if (active !== null || busy || (ev.pointerType === "mouse" && ev.button !== 0)) return;
  ev.preventDefault();
  active = ev.pointerId;
  try { pad.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic or vanished pointer */ }
  if (!strokes.length) t0 = ev.timeStamp;
  redoStack = [];
  strokes.push([point(ev)]);
  refresh();
});

pad.addEventListener("pointermove", (ev) => {
  if (ev.pointerId !== active) return;
  ev.preventDefault();
  const evs = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [];
  const s = strokes[strokes.length - 1];
  for (const e of (evs.length ? evs : [ev])) {
    const p = point(e), q = s[s.length - 1];
    if (p[0] !== q[0] || p[1] !== q[1]) s.push(p);
  }
  drawPad();
});

function endStroke(ev) {
  if (ev.pointerId !== active) return;
  active = null;
  refresh();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

// ---- buttons --------------------------------------------------------------------
function undoStroke() { if (strokes.length) { redoStack.push(strokes.pop()); refresh(); } }
function redoStroke() { if (redoStack.length) { strokes.push(redoStack.pop()); refresh(); } }
function clearLine() { while (strokes.length) redoStack.push(strokes.pop()); refresh(); }

async function post(path, body) {
  busy = true; refresh();
  try {
    const r = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const answer = await r.json();
    if (r.ok) { show(answer); return true; }
    say(answer.error || `error ${r.status}`, true);
    if (answer.state) { strokes = []; redoStack = []; show(answer.state); }
    return false;
  } catch (e) {
    say("Cannot reach genseq capture (is it still running?). Your drawing is kept; try again.", true);
    return false;
  } finally {
    busy = false; refresh();
  }
}

async function submitLine() {
  if (busy || !state) return;
  if (!strokes.length) { say("Nothing written yet: write the sentence above on the pad first.", true); return; }
  if (active !== null) return;
  const text = state.prompt.text;
  if (await post("api/submit", { index: state.prompt.index, text, strokes })) {
    strokes = []; redoStack = [];
    say(`Saved: “${text}”`);
    refresh();
  }
}

async function skipPrompt() {
  if (busy || !state) return;
  const text = state.prompt.text;
  if (await post("api/skip", { index: state.prompt.index })) {
    strokes = []; redoStack = [];
    say(`Skipped: “${text}”`);
    refresh();
  }
}

async function redoLine() {
  if (busy || !state || !state.last) return;
  const text = state.last.text;
  if (await post("api/undo", { id: state.last.id })) {
    strokes = []; redoStack = [];
    say(`Removed the previous line from the file; write “${text}” again.`);
    refresh();
  }
}

$("undo").addEventListener("click", undoStroke);
$("redo").addEventListener("click", redoStroke);
$("clear").addEventListener("click", clearLine);
$("submit").addEventListener("click", submitLine);
$("skip").addEventListener("click", skipPrompt);
$("redo-line").addEventListener("click", redoLine);

document.addEventListener("keydown", (ev) => {
  const mod = ev.ctrlKey || ev.metaKey;
  if (mod && ev.key.toLowerCase() === "z" && !ev.shiftKey) { ev.preventDefault(); undoStroke(); }
  else if (mod && (ev.key.toLowerCase() === "y" || (ev.key.toLowerCase() === "z" && ev.shiftKey))) { ev.preventDefault(); redoStroke(); }
  else if (ev.key === "Enter" && !(ev.target instanceof HTMLButtonElement)) { ev.preventDefault(); submitLine(); }
});

window.addEventListener("beforeunload", (ev) => {
  if (strokes.length) { ev.preventDefault(); ev.returnValue = ""; }  // an unsaved line is on the pad
});
window.addEventListener("resize", refresh);

api("api/state").then(async (r) => {
  const s = await r.json();
  if (!r.ok) { say(s.error || `error ${r.status}`, true); return; }  // e.g. a wrong key: 403
  show(s);
  say("Write the sentence above, then Save line.");
  document.body.dataset.ready = "1";
}).catch(() => say("Cannot reach genseq capture (is it still running?). Reload this page to try again.", true));
