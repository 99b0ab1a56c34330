// genseq studio: write in the browser, watch the pen, download.
// The server streams each line as it grows (NDJSON, see genseq/studio/session.py);
// this page draws the ink at the pen's own pace (POINTS_PER_SECOND x speed),
// with the same layout and the same smooth curves as the SVG download
// (genseq/render/smooth.py: centripetal Catmull-Rom as cubic Beziers).
"use strict";

const POINTS_PER_SECOND = 50;  // the pen's pace: ~11.3 points per character, ~4.5 characters a second
const LINE_PAUSE = 0.4;        // seconds between lines, as in the animated SVG
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
window.studioLog = [];  // [event, line, ms since Write]: what the browser test reads
let t0 = 0;
const log = (what, line) => window.studioLog.push([what, line, performance.now() - t0]);

// -- geometry (a port of genseq/render/smooth.py) -------------------------------------------
function strokesOf(points, n) {
  // points: [[dx, dy, pen], ...] data units; the first n rows as strokes of [x, y]
  const strokes = [];
  let cur = [], x = 0, y = 0;
  for (let i = 0; i < n; i++) {
    x += points[i][0]; y += points[i][1];
    cur.push([x, y]);
    if (points[i][2] > 0.5) { strokes.push(cur); cur = []; }
  }
  if (cur.length) strokes.push(cur);
  return strokes;
}

const num = (v) => { const s = v.toFixed(2).replace(/\.?0+$/, ""); return s === "-0" || s === "" ? "0" : s; };

function smoothPath(p) {
  // p: [[x, y], ...] page px -> SVG path data (smooth_path)
  const q = [];
  for (const pt of p) if (!q.length || pt[0] !== q[q.length - 1][0] || pt[1] !== q[q.length - 1][1]) q.push(pt);
  if (!q.length) return "";
  if (q.length === 1) return `M${num(q[0][0])} ${num(q[0][1])}h0.01`;
  if (q.length === 2) return `M${num(q[0][0])} ${num(q[0][1])}L${num(q[1][0])} ${num(q[1][1])}`;
  const ext = [[2 * q[0][0] - q[1][0], 2 * q[0][1] - q[1][1]], ...q,
               [2 * q[q.length - 1][0] - q[q.length - 2][0], 2 * q[q.length - 1][1] - q[q.length - 2][1]]];
  const len = (a, b) => Math.max(Math.hypot(b[0] - a[0], b[1] - a[1]), 1e-12);
  const parts = [`M${num(q[0][0])} ${num(q[0][1])}C`];
  const segs = [];
  for (let i = 0; i + 3 < ext.length; i++) {
    const [p0, p1, p2, p3] = [ext[i], ext[i + 1], ext[i + 2], ext[i + 3]];
    const l1 = len(p0, p1), l2 = len(p1, p2), l3 = len(p2, p3);
    const d1 = Math.sqrt(l1), d2 = Math.sqrt(l2), d3 = Math.sqrt(l3);
    const c1 = [0, 1].map((k) => (l1 * p2[k] - l2 * p0[k] + (2 * l1 + 3 * d1 * d2 + l2) * p1[k]) / (3 * d1 * (d1 + d2)));
    const c2 = [0, 1].map((k) => (l3 * p1[k] - l2 * p3[k] + (2 * l3 + 3 * d3 * d2 + l2) * p2[k]) / (3 * d3 * (d3 + d2)));
    segs.push([...c1, ...c2, ...p2].map(num).join(" "));
  }
  return parts[0] + segs.join(" ");
}

// -- the drawing: lines as they arrive, and the pen's cursor ----------------------------------
const state = { lines: [], rows: {}, width: 1000, height: 100, cursor: { line: 0, n: 0, pause: 0 },
                skip: false, done: false, job: null, color: "#000000", strokeWidth: 1.6, last: 0, drawn: [] };

function resetPage(texts, color, width) {
  const svg = $("page");
  svg.replaceChildren();
  state.lines = texts.map(() => ({ points: [], final: false }));
  state.texts = texts;
  state.rows = {}; state.drawn = texts.map(() => ""); state.done = false; state.skip = false;
  state.cursor = { line: 0, n: 0, pause: 0 };
  state.color = color; state.strokeWidth = width;
  const bg = document.createElementNS(SVGNS, "rect");
  bg.setAttribute("width", "100%"); bg.setAttribute("height", "100%"); bg.setAttribute("fill", "white");
  const g = document.createElementNS(SVGNS, "g");
  for (const [k, v] of [["fill", "none"], ["stroke", color], ["stroke-width", width],
                        ["stroke-linecap", "round"], ["stroke-linejoin", "round"], ["class", "ink"]]) g.setAttribute(k, v);
  state.paths = texts.map((_, i) => {
    const p = document.createElementNS(SVGNS, "path");
    p.setAttribute("data-line", i);
    g.appendChild(p);
    return p;
  });
  svg.append(bg, g);
}

function applyLayout(layout) {
  state.width = layout.width; state.height = layout.height;
  $("page").setAttribute("viewBox", `0 0 ${layout.width} ${layout.height}`);
  state.rows = {};
  for (const [line, x0, y0, s] of layout.rows) state.rows[line] = [x0, y0, s];
}

function drawLine(i, n) {
  const row = state.rows[i];
  if (!row) return;
  const [x0, y0, s] = row;
  const d = strokesOf(state.lines[i].points, n).map((st) => smoothPath(st.map(([x, y]) => [x0 + s * x, y0 - s * y]))).join("");
  const key = `${n}|${x0}|${y0}|${s}|${state.lines[i].version || 0}`;
  if (state.drawn[i] === key) return;
  state.drawn[i] = key;
  state.paths[i].setAttribute("d", d);
  if (d && !state.paths[i].dataset.inked) { state.paths[i].dataset.inked = "1"; log("ink", i); }
}

function tick(now) {
  const dt = state.last ? Math.min(0.1, (now - state.last) / 1000) : 0;
  state.last = now;
  const c = state.cursor, speed = Number($("speed").value);
  if (state.skip) { c.line = state.lines.length; }
  else {
    if (c.pause > 0) c.pause -= dt * speed;
    else c.n += dt * POINTS_PER_SECOND * speed;
    while (c.line < state.lines.length) {
      const L = state.lines[c.line];
      if (state.texts[c.line] === "") { c.line++; c.n = 0; continue; }
      if (c.n < L.points.length || !L.final) { c.n = Math.min(c.n, L.points.length); break; }
      c.n -= L.points.length; c.line++; c.pause = LINE_PAUSE; c.n = 0;
    }
  }
  for (let i = 0; i < state.lines.length; i++) {
    const L = state.lines[i];
    drawLine(i, i < c.line ? L.points.length : i === c.line ? Math.floor(c.n) : 0);
  }
  requestAnimationFrame(tick);
}

// -- talking to the server -------------------------------------------------------------------
async function readStream(resp, onMessage) {
  if (!resp.ok) {
    let msg = `error ${resp.status}`;
    try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  const reader = resp.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (msg.type === "error") throw new Error(msg.error);
      onMessage(msg);
    }
  }
}

function showError(el, text) { el.textContent = text || ""; el.hidden = !text; }

function setDownloads(job) {
  for (const a of document.querySelectorAll("#downloads a")) {
    if (job) { a.href = `api/download?job=${job}&kind=${a.dataset.kind}`; a.removeAttribute("aria-disabled"); a.tabIndex = 0; }
    else { a.removeAttribute("href"); a.setAttribute("aria-disabled", "true"); a.tabIndex = -1; }
  }
}

let writing = null;
async function write(ev) {
  if (ev) ev.preventDefault();
  if (writing) writing.abort();
  const ctl = new AbortController();
  writing = ctl;
  showError($("error"), "");
  setDownloads(null);
  const style = document.querySelector("input[name=style]:checked");
  const body = { text: $("text").value, style: style ? (/^\d+$/.test(style.value) ? Number(style.value) : style.value) : "default",
                 bias: Number($("bias").value), seed: Number($("seed").value), quality: $("quality").value,
                 color: $("color").value, width: Number($("width").value), page_width: Number($("page-width").value),
                 align: $("align").value };
  window.studioLog = []; t0 = performance.now();
  $("status").textContent = "writing…";
  try {
    const resp = await fetch("api/write", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify(body), signal: ctl.signal });
    await readStream(resp, (m) => {
      if (m.type === "start") { resetPage(m.lines, body.color, body.width); log("start", -1); }
      else if (m.type === "line") {
        const L = state.lines[m.line];
        L.points = L.points.slice(0, m.from).concat(m.points);
        L.version = (L.version || 0) + 1;
        L.final = m.final;
        log(m.final ? "final" : "grow", m.line);
      } else if (m.type === "layout") applyLayout(m);
      else if (m.type === "done") {
        state.done = true; state.job = m.job; setDownloads(m.job); log("done", -1);
        $("status").textContent = m.warnings.length ? m.warnings.join(" ") : "done";
      }
    });
  } catch (err) {
    if (err.name !== "AbortError") { showError($("error"), err.message); $("status").textContent = ""; log("error", -1); }
  } finally {
    if (writing === ctl) writing = null;
  }
}

async function generate(ev) {
  ev.preventDefault();
  showError($("text-error"), "");
  const out = $("text-out");
  out.textContent = "";
  const body = { model: $("text-model").value, prime: $("prime").value, temperature: Number($("temperature").value),
                 length: Number($("length").value), seed: Number($("text-seed").value) };
  try {
    const resp = await fetch("api/sample", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(body) });
    t0 = performance.now();
    await readStream(resp, (m) => {
      if (m.type === "text") { out.textContent += m.text; log("text", out.textContent.length); }
      else if (m.type === "done") log("text-done", out.textContent.length);
    });
  } catch (err) { showError($("text-error"), err.message); }
}

async function useMine(body) {
  showError($("error"), "");
  try {
    const resp = await fetch("api/mine", { method: "POST", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify(body) });
    const obj = await resp.json();
    if (!resp.ok) throw new Error(obj.error);
    addStyle("mine", `mine: ${obj.name}`, obj.preview, true);
    followStyle();
  } catch (err) { showError($("error"), err.message); }
}

async function chooseMine(ev) {
  const file = ev.target.files[0];
  if (file) await useMine({ name: file.name, jsonl: await file.text() });
}

// The legibility slider shows the bias the chosen style is written with (your own ink: its
// own, genseq.hand.api.style_bias) until the user moves it.
let biasDefaults = null, biasMoved = false;
function followStyle() {
  if (!biasDefaults || biasMoved) return;
  const s = document.querySelector("input[name=style]:checked");
  const v = s ? s.value : "default";
  const own = v === "mine" || (biasDefaults.own_styles && v !== "none");
  $("bias").value = own ? biasDefaults.own_bias : biasDefaults.bias;
  $("bias-out").textContent = Number($("bias").value).toFixed(2);
}

function addStyle(value, label, svg, checked) {
  const list = $("style-list");
  const old = list.querySelector(`input[value="${value}"]`);
  if (old) old.parentElement.remove();
  const lab = document.createElement("label");
  const input = document.createElement("input");
  input.type = "radio"; input.name = "style"; input.value = value; input.checked = !!checked;
  lab.appendChild(input);
  if (svg) {
    const img = document.createElement("img");
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
    img.alt = label;
    lab.appendChild(img);
  } else {
    const span = document.createElement("span");
    span.textContent = label;
    lab.appendChild(span);
  }
  lab.title = label;
  list.appendChild(lab);
}

function tabs() {
  const all = [...document.querySelectorAll("[role=tab]")];
  const select = (tab) => {
    for (const t of all) {
      const on = t === tab;
      t.setAttribute("aria-selected", on); t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    tab.focus();
  };
  all.forEach((t, i) => {
    t.addEventListener("click", () => select(t));
    t.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") select(all[(i + (e.key === "ArrowRight" ? 1 : all.length - 1)) % all.length]);
    });
  });
}

async function init() {
  tabs();
  setDownloads(null);
  const info = await (await fetch("api/info")).json();
  const d = info.defaults;
  $("bias").value = d.bias; $("seed").value = d.seed; $("quality").value = d.quality;
  $("color").value = d.color === "black" ? "#000000" : d.color; $("width").value = d.width;
  $("page-width").value = d.page_width; $("align").value = d.align;
  $("text").maxLength = info.max_text;
  addStyle("default", "the seed's style", null, true);
  info.styles.forEach((svg, i) => addStyle(String(i), `style ${i}`, svg, false));
  addStyle("none", "no style (each line its own hand)", null, false);
  if (info.mine) addStyle("mine", `mine: ${info.mine.name}`, info.mine.preview, false);
  if (info.capture) {  // a capture page beside the studio (genseq studio --capture FILE)
    $("capture-link").href = info.capture;
    $("capture").hidden = false;
    $("capture-hint").hidden = true;
    $("use-recorded").addEventListener("click", () => useMine({ recorded: true }));
  }
  for (const name of info.text_models) {
    const o = document.createElement("option"); o.value = o.textContent = name; $("text-model").appendChild(o);
  }
  const showBias = () => { $("bias-out").textContent = Number($("bias").value).toFixed(2); };
  const showSpeed = () => { $("speed-out").textContent = `${$("speed").value}×`; };
  showBias(); showSpeed();
  $("bias").addEventListener("input", () => { biasMoved = true; showBias(); });
  biasDefaults = d;
  $("style-list").addEventListener("change", followStyle);
  followStyle();
  $("speed").addEventListener("input", showSpeed);
  $("new-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 1e9); });
  $("skip").addEventListener("click", () => { state.skip = true; });
  $("write-form").addEventListener("submit", write);
  $("text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) write(e); });
  $("mine-file").addEventListener("change", chooseMine);
  $("text-form").addEventListener("submit", generate);
  document.body.dataset.ready = "1";
  requestAnimationFrame(tick);
}

init().catch((err) => showError($("error"), `cannot reach the studio server: ${err.message}`));
