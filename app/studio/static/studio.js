// gensc studio: the page. Plain JavaScript, no libraries, nothing fetched from elsewhere.
// Every call carries this tab's session token (a new one per page load), so two tabs never
// share results. Text that came from a service is always set as text, never as HTML.
"use strict";

const POLL_MS = 300;
const MAX_POLL_FAILURES = 20; // ~6 s of an unreachable studio server, then give up and say so
const STRIP_MAX = 10;
const SVG = "http://www.w3.org/2000/svg";
const LANE_COLOURS = { client: "#98a2b3", sender: "#2563eb", channel: "#d97706", receiver: "#7c3aed" };

const $ = (id) => document.getElementById(id);
const state = {
  session: null,
  options: null,
  source: null, // {sample: NAME} | {upload: ID}
  sourceLabel: "",
  sendSeq: 0, // the newest send's number: older answers do not replace the view
  current: null, // the item shown
  strip: [], // past items, newest first
  sweepJob: null,
  sliderTimer: null,
};

// ---------------------------------------------------------------- talking to the studio server

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function api(path, { method = "GET", json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (state.session) h["X-Studio-Session"] = state.session;
  let payload = body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: payload, cache: "no-store" });
  } catch (e) {
    throw new ApiError("UNAVAILABLE", "the studio server is not answering (was gensc studio stopped?)");
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    throw new ApiError("INTERNAL", `the studio answered ${res.status} without JSON`);
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(err.code || String(res.status), err.message || `HTTP ${res.status}`);
  }
  return data;
}

function fileUrl(path) {
  return `${path}?session=${encodeURIComponent(state.session)}`;
}

// ---------------------------------------------------------------- messages

function showError(lead, message) {
  const box = $("error");
  box.replaceChildren();
  if (lead) {
    const b = document.createElement("b");
    b.textContent = lead;
    box.append(b);
  }
  box.append(document.createTextNode(message || ""));
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").replaceChildren();
}

function progress(text) {
  $("progress").textContent = text;
}

// ---------------------------------------------------------------- set-up

async function init() {
  try {
    state.session = (await api("/api/session", { method: "POST" })).session;
    state.options = await api("/api/options");
  } catch (e) {
    showError("The studio server did not answer.", e.message);
    return;
  }
  const o = state.options;
  fillSelect($("mode"), [["", "sender's default"], ...o.modes.map((m) => [m, m])], "text+latent");
  fillSelect($("bits"), [["", "sender's default"], ...[8, 7, 6, 5, 4, 3, 2, 1].map((b) => [String(b), `${b}`])], "");
  fillSelect($("modulation"), o.modulations.map((m) => [m, m]), o.link_defaults.modulation);
  fillSelect($("code"), o.codes.map((c) => [c, c]), o.link_defaults.code);
  fillSelect($("snr-kind"), o.snr_kinds.map((k) => [k, k === "esn0" ? "Es/N0" : "Eb/N0"]), o.link_defaults.snr_kind);
  fillSelect($("fading"), o.fading.map((f) => [f, f]), o.link_defaults.fading);
  fillSelect($("budget-unit"), [["budget_bytes", "bytes"], ["bpp", "bit/pixel"]], "budget_bytes");
  $("snr").value = String(o.link_defaults.snr_db);
  showSnr();
  for (const name of o.samples) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.sample = name;
    b.title = name;
    b.setAttribute("aria-pressed", "false");
    const img = document.createElement("img");
    img.src = `/api/samples/${encodeURIComponent(name)}.png?thumb=1`;
    img.alt = name;
    b.append(img);
    b.addEventListener("click", () => chooseSample(name));
    $("samples").append(b);
  }
  $("upload").addEventListener("change", onUpload);
  $("mode").addEventListener("change", onMode);
  $("send").addEventListener("click", () => send(false));
  $("snr").addEventListener("input", showSnr);
  $("snr").addEventListener("change", onSlider);
  $("sweep").addEventListener("click", startSweep);
  $("cancel").addEventListener("click", cancelSweep);
  showServices(o.status);
  if (o.status.state !== "ready") watchServices();
}

function fillSelect(select, pairs, chosen) {
  select.replaceChildren();
  for (const [value, text] of pairs) {
    const opt = document.createElement("option");
    opt.value = value;
    opt.textContent = text;
    if (value === chosen) opt.selected = true;
    select.append(opt);
  }
}

function showServices(st) {
  const pill = $("services");
  pill.className = `pill ${st.state}`;
  if (st.state === "ready") pill.textContent = `sender ${st.sender}`;
  else if (st.state === "failed") pill.textContent = "services failed";
  else pill.textContent = `starting local services… ${Math.round(st.elapsed_s)} s`;
  pill.title = st.message || "";
  if (st.state === "failed") showError("The local services did not start.", st.message);
  if (st.state === "ready" && st.message && st.message !== `sender ${st.sender}`) $("profile").textContent = st.message;
}

async function watchServices() {
  for (;;) {
    await sleep(1000);
    try {
      const st = (await api("/api/options")).status;
      showServices(st);
      if (st.state !== "starting") return;
    } catch (e) {
      showError("The studio server is not answering.", e.message);
      return;
    }
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------- choosing the photo

function chooseSample(name) {
  state.source = { sample: name };
  state.sourceLabel = name;
  for (const b of $("samples").children) b.setAttribute("aria-pressed", String(b.dataset.sample === name));
  $("source").textContent = `sample photo: ${name}`;
  $("upload").value = "";
  clearError();
}

async function onUpload(ev) {
  const file = ev.target.files[0];
  if (!file) return;
  clearError();
  const limit = state.options.max_upload_bytes;
  if (file.size > limit) {
    const mib = (n) => (n / 2 ** 20).toFixed(1);
    showError(
      "That file is too large.",
      `${file.name} is ${mib(file.size)} MiB, over the studio's limit of ${mib(limit)} MiB (gensc studio --max-upload-mb).`
    );
    ev.target.value = "";
    return;
  }
  progress(`uploading ${file.name}…`);
  try {
    const up = await api("/api/upload", {
      method: "POST",
      body: file,
      headers: { "X-File-Name": encodeURIComponent(file.name), "Content-Type": file.type || "application/octet-stream" },
    });
    state.source = { upload: up.upload_id };
    state.sourceLabel = up.name;
    for (const b of $("samples").children) b.setAttribute("aria-pressed", "false");
    $("source").textContent = `upload: ${up.name} (${up.width}×${up.height})`;
    progress("");
  } catch (e) {
    progress("");
    showError("The upload was refused.", e.message);
    ev.target.value = "";
  }
}

// ---------------------------------------------------------------- sending

class SettingsError extends Error {}

// The page's choices. With mode "auto" the sender's policy picks the link (modulation, code)
// from the SNR, so the page leaves them out: sending them would pin the link. The budget goes
// as budget_bytes or bpp (the TransmitRequest's fields; empty: none); the studio checks its
// limits. Text that is not a number is refused here, never sent as "no budget".
function settings() {
  const bits = $("bits").value;
  const mode = $("mode").value || null;
  const link = { snr_db: Number($("snr").value), snr_kind: $("snr-kind").value, fading: $("fading").value };
  if (mode !== "auto") {
    link.modulation = $("modulation").value;
    link.code = $("code").value;
  }
  const out = { mode, quant_bits: bits ? Number(bits) : null, link };
  const budget = $("budget").value.trim();
  if (budget) {
    const value = Number(budget);
    if (!Number.isFinite(value)) {
      throw new SettingsError(`the budget must be a number of ${$("budget-unit").selectedOptions[0].textContent} (or empty for none), got "${budget}"`);
    }
    out[$("budget-unit").value] = value;
  }
  return out;
}

function onMode() {
  const auto = $("mode").value === "auto";
  $("modulation").disabled = auto;
  $("code").disabled = auto;
  $("modulation").title = $("code").title = auto ? "mode auto: the sender's policy picks the link from the SNR" : "";
}

function showSnr() {
  $("snr-value").textContent = Number($("snr").value).toFixed(1);
}

function onSlider() {
  showSnr();
  if (!state.source || !state.current) return; // nothing sent yet: the slider only sets the SNR
  clearTimeout(state.sliderTimer);
  state.sliderTimer = setTimeout(() => send(true), 200);
}

async function send(replace) {
  clearError();
  if (!state.source) {
    showError("No photo yet.", "Pick a sample photo or upload an image first.");
    return;
  }
  const seq = ++state.sendSeq;
  let s;
  let job;
  try {
    s = settings();
    job = await api("/api/jobs", { method: "POST", json: { kind: "send", source: state.source, settings: s, replace } });
  } catch (e) {
    showError("The studio refused the request.", e.message);
    return;
  }
  const done = await follow(job, (j) => {
    if (seq !== state.sendSeq) return;
    progress(
      j.state === "queued"
        ? `waiting for a worker… ${j.waited_s.toFixed(1)} s`
        : `sending ${j.label} at ${s.link.snr_db} dB… ${j.elapsed_s.toFixed(1)} s`
    );
  });
  if (!done) return;
  if (done.state === "superseded" || done.state === "cancelled") return;
  if (done.state === "failed") {
    if (seq === state.sendSeq) showError("The studio failed.", done.error ? done.error.message : "");
    return;
  }
  const item = await api(`/api/items/${done.items[0]}`);
  addToStrip(item);
  if (seq === state.sendSeq) {
    const how = item.status === "ok" ? "done" : `no image (${item.error ? item.error.code : item.status})`;
    progress(`${how} in ${done.elapsed_s.toFixed(1)} s`);
    show(item);
  }
}

// Poll a job until it ends; onUpdate(job) after each poll. Returns the last job, or null.
async function follow(job, onUpdate) {
  let failures = 0;
  for (;;) {
    onUpdate(job);
    if (!["queued", "running"].includes(job.state)) return job;
    await sleep(POLL_MS);
    try {
      job = await api(`/api/jobs/${job.job_id}`);
      failures = 0;
    } catch (e) {
      if (e.code === "NOT_FOUND" || ++failures >= MAX_POLL_FAILURES) {
        progress("");
        showError("Lost track of the job.", e.message);
        return null;
      }
    }
  }
}

// ---------------------------------------------------------------- showing one item

function fmt(v, digits, unit = "") {
  return v === null || v === undefined ? "–" : `${Number(v).toFixed(digits)}${unit}`;
}

function fmtBer(v) {
  return v === null || v === undefined ? "–" : Number(v).toExponential(2);
}

function show(item) {
  state.current = item;
  $("empty").hidden = true;
  $("result").hidden = false;
  for (const b of $("strip").children) b.classList.toggle("current", b.dataset.item === item.item_id);
  const f = item.files || {};
  for (const [id, key] of [["img-original", "original.png"], ["img-recon", "reconstruction.png"]]) {
    $(id).hidden = !f[key];
    if (f[key]) $(id).src = fileUrl(f[key]);
    else $(id).removeAttribute("src");
  }
  const m = item.metrics || {};
  $("m-psnr").textContent = fmt(m.psnr_db, 2, " dB");
  $("m-ssim").textContent = fmt(m.ssim, 4);
  $("m-msssim").textContent = fmt(m.ms_ssim, 4);
  $("m-status").textContent = item.status;
  $("metric-notes").textContent = (item.metric_notes || []).join(" ");
  const banner = $("banner");
  banner.hidden = !item.random_weights;
  banner.textContent = item.random_weights
    ? `profile ${item.profile}: random-weight models — the pipeline, link, bytes and timings are real; the pictures are not meaningful.`
    : "";
  if (item.error) showError(`${item.error.code}: ${item.error.lead}`, item.error.message);
  else clearError();
  showSent(item);
  showBudget(item);
  showChannel(item);
  showTimeline(item.timeline);
  showDownloads(item);
}

function showSent(item) {
  $("sent-mode").textContent = item.mode || "–";
  $("sent-text-kind").textContent = item.mode === "key+text" ? "structured prompt" : "caption";
  $("sent-caption").textContent = item.caption || "(no text)";
  drawMask(item);
  const p = item.payload;
  const table = $("bytes");
  table.replaceChildren();
  if (!p) {
    $("payload-total").textContent = "–";
    $("payload-raw").textContent = "–";
    $("payload-ratio").textContent = "–";
    $("payload-bpp").textContent = "–";
    return;
  }
  const biggest = Math.max(1, ...p.sections.map(([, n]) => n));
  for (const [name, n] of p.sections) {
    const tr = table.insertRow();
    tr.dataset.section = name;
    tr.insertCell().textContent = name;
    const num = tr.insertCell();
    num.textContent = `${n} B`;
    const bar = tr.insertCell();
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${(100 * n) / biggest}%`;
    bar.append(fill);
  }
  $("payload-total").textContent = String(p.total);
  $("payload-raw").textContent = p.raw_bytes === null ? "–" : String(p.raw_bytes);
  $("payload-ratio").textContent = p.ratio === null ? "–" : `${(100 * p.ratio).toFixed(2)} %`;
  $("payload-bpp").textContent = p.bits_per_pixel === null ? "–" : p.bits_per_pixel.toFixed(3);
}

// The budget asked, what the sender chose to fit it and what it cost (the Result's budget report).
function showBudget(item) {
  const b = item.budget;
  $("budget-box").hidden = !b;
  const table = $("budget-chosen");
  table.replaceChildren();
  if (!b) return;
  $("budget-asked").textContent = b.asked;
  const cost = $("budget-cost");
  cost.className = b.met ? "" : "unmet";
  if (!b.met) {
    cost.textContent = "not met: the sender sent nothing (see the error)";
    return;
  }
  const parts = [];
  if (b.limit_bytes !== null && b.limit_bytes !== undefined) {
    parts.push(`cost ${b.cost_bytes} of ${b.limit_bytes} B (${(100 * b.share).toFixed(1)} %)`);
  } else {
    parts.push(`cost ${b.cost_bytes} B`);
  }
  if (b.limit_symbols !== null && b.limit_symbols !== undefined) parts.push(`${b.cost_symbols} of ${b.limit_symbols} symbols`);
  cost.textContent = parts.join(", ");
  for (const [label, value] of b.chosen) {
    const tr = table.insertRow();
    tr.dataset.choice = label;
    const th = document.createElement("th");
    th.textContent = label;
    tr.append(th);
    tr.insertCell().textContent = String(value);
  }
}

function drawMask(item) {
  const canvas = $("mask");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const mask = item.key_mask;
  const url = item.files && item.files["original.png"];
  $("mask-note").textContent = mask
    ? `key regions: ${countKeys(mask)} of ${mask.rows * mask.cols} latent cells (bright) travel as latents; the rest as the prompt`
    : "no key-region mask in this mode (only key+text sends one)";
  if (!url) return;
  const img = new Image();
  img.onload = () => {
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    if (!mask) return;
    const cw = canvas.width / mask.cols;
    const ch = canvas.height / mask.rows;
    ctx.fillStyle = "rgba(15, 23, 42, 0.62)";
    for (let r = 0; r < mask.rows; r++) {
      for (let c = 0; c < mask.cols; c++) {
        if (mask.cells[r][c] !== "1") ctx.fillRect(c * cw, r * ch, cw, ch);
      }
    }
    ctx.strokeStyle = "#f59e0b";
    ctx.lineWidth = 1;
    for (let r = 0; r < mask.rows; r++) {
      for (let c = 0; c < mask.cols; c++) {
        if (mask.cells[r][c] === "1") ctx.strokeRect(c * cw + 0.5, r * ch + 0.5, cw - 1, ch - 1);
      }
    }
  };
  img.src = fileUrl(url);
}

function countKeys(mask) {
  return mask.cells.reduce((n, row) => n + [...row].filter((c) => c === "1").length, 0);
}

function showChannel(item) {
  const ch = item.channel;
  const set = (id, text) => ($(id).textContent = text);
  if (!ch) {
    for (const id of ["ch-link", "ch-snr", "ch-ber-raw", "ch-ber", "ch-header", "ch-crc", "ch-symbols", "ch-airtime"]) set(id, "–");
    drawConstellation(null);
    return;
  }
  set("ch-link", `${ch.modulation} · ${ch.code} · fading ${ch.fading}${ch.erased ? " · ERASED" : ""}`);
  set("ch-snr", `${fmt(ch.esn0_db, 2)} dB · ${fmt(ch.ebn0_db, 2)} dB (set: ${ch.snr_db} dB ${ch.snr_kind === "ebn0" ? "Eb/N0" : "Es/N0"})`);
  set("ch-ber-raw", `${fmtBer(ch.ber_raw)} (${ch.bit_errors_raw} of ${ch.coded_bits} coded bits)`);
  set("ch-ber", `${fmtBer(ch.ber)} (${ch.bit_errors} of ${ch.info_bits} bits)`);
  set("ch-header", ch.header_ok ? (ch.ideal_header ? "ideal (side channel)" : "arrived intact") : "LOST");
  set("ch-crc", ch.crc);
  set("ch-symbols", String(ch.symbols));
  set("ch-airtime", `${fmt(ch.airtime_ms, 3)} ms`);
  drawConstellation(item.constellation);
}

function drawConstellation(c) {
  const canvas = $("constellation");
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (!c) {
    $("constellation-note").textContent = "no channel report";
    return;
  }
  const extent = Math.max(1.5, ...c.ideal.map(([x, y]) => 1.35 * Math.max(Math.abs(x), Math.abs(y))));
  const px = (x) => w / 2 + (x / extent) * (w / 2);
  const py = (y) => h / 2 - (y / extent) * (h / 2);
  ctx.strokeStyle = "#d0d5dd";
  ctx.beginPath();
  ctx.moveTo(0, h / 2);
  ctx.lineTo(w, h / 2);
  ctx.moveTo(w / 2, 0);
  ctx.lineTo(w / 2, h);
  ctx.stroke();
  ctx.fillStyle = "rgba(37, 99, 235, 0.45)";
  for (const [x, y] of c.received) {
    if (Math.abs(x) > extent || Math.abs(y) > extent) continue;
    ctx.fillRect(px(x) - 1.5, py(y) - 1.5, 3, 3);
  }
  ctx.strokeStyle = "#b42318";
  ctx.lineWidth = 1.5;
  for (const [x, y] of c.ideal) {
    ctx.beginPath();
    ctx.moveTo(px(x) - 4, py(y) - 4);
    ctx.lineTo(px(x) + 4, py(y) + 4);
    ctx.moveTo(px(x) + 4, py(y) - 4);
    ctx.lineTo(px(x) - 4, py(y) + 4);
    ctx.stroke();
  }
  const outside = c.received.filter(([x, y]) => Math.abs(x) > extent || Math.abs(y) > extent).length;
  $("constellation-note").textContent = c.received.length
    ? `${c.modulation}: ${c.received.length} received symbols after equalisation (blue; a sample spread over the body` +
      `${outside ? `, ${outside} off the plot` : ""}), the constellation's points (red ×)`
    : `${c.modulation}: the channel proxy returned no symbol sample`;
}

function showTimeline(t) {
  const svg = $("timeline");
  svg.replaceChildren();
  $("timeline-list").replaceChildren();
  if (!t) {
    $("timeline-note").textContent = "no timings";
    return;
  }
  const lanes = ["client", "sender", "channel", "receiver"];
  const width = svg.clientWidth || 800;
  const left = 70;
  const scale = (width - left - 10) / Math.max(t.total_ms, 1e-9);
  lanes.forEach((lane, i) => {
    svg.append(svgEl("text", { x: 0, y: 22 + i * 26, "dominant-baseline": "middle" }, lane));
  });
  for (const s of t.segments) {
    const i = lanes.indexOf(s.lane);
    const rect = svgEl("rect", {
      x: left + s.start_ms * scale,
      y: 12 + i * 26,
      width: Math.max(1, s.ms * scale),
      height: 20,
      fill: s.kind === "transport" ? "#d0d5dd" : s.kind === "other" ? "#eaecf0" : LANE_COLOURS[s.lane],
      stroke: "white",
    });
    rect.append(svgEl("title", {}, `${s.name}: ${s.ms.toFixed(1)} ms`));
    svg.append(rect);
    const li = document.createElement("li");
    li.textContent = `${s.lane} · ${s.name}: ${s.ms.toFixed(1)} ms`;
    $("timeline-list").append(li);
  }
  svg.append(svgEl("text", { x: left, y: 122 }, "0 ms"));
  svg.append(svgEl("text", { x: width - 10, y: 122, "text-anchor": "end" }, `${t.total_ms.toFixed(0)} ms`));
  const notes = [`total ${t.total_ms.toFixed(1)} ms on the client's clock; stages laid end to end in the order the image meets them; grey: gRPC hops (there and back together).`];
  for (const [name, v] of Object.entries(t.inside || {})) notes.push(`${name} ${v.ms.toFixed(1)} ms is part of ${v.of}.`);
  for (const [name, ms] of Object.entries(t.not_wall_time || {})) notes.push(`simulated ${name} ${ms.toFixed(3)} ms (not wall time).`);
  const unplaced = Object.entries(t.unplaced || {});
  if (unplaced.length) notes.push(`other stages: ${unplaced.map(([n, ms]) => `${n} ${ms.toFixed(1)} ms`).join(", ")}.`);
  $("timeline-note").textContent = notes.join(" ");
}

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function showDownloads(item) {
  const box = $("downloads");
  box.replaceChildren();
  for (const [name, path] of Object.entries(item.files || {})) {
    const a = document.createElement("a");
    a.href = fileUrl(path);
    a.textContent = name;
    a.dataset.file = name;
    a.setAttribute("download", "");
    box.append(a);
  }
  const notes = $("notes");
  notes.replaceChildren();
  for (const n of item.notes || []) {
    const li = document.createElement("li");
    li.textContent = n;
    notes.append(li);
  }
}

// ---------------------------------------------------------------- the strip of past results

function addToStrip(item) {
  state.strip = [item, ...state.strip.filter((i) => i.item_id !== item.item_id)].slice(0, STRIP_MAX);
  const strip = $("strip");
  strip.replaceChildren();
  $("strip-box").hidden = state.strip.length === 0;
  for (const it of state.strip) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.item = it.item_id;
    b.classList.toggle("current", state.current && state.current.item_id === it.item_id);
    const f = it.files || {};
    if (f["reconstruction.png"]) {
      const img = document.createElement("img");
      img.src = fileUrl(f["reconstruction.png"]);
      img.alt = `${it.label} at ${it.settings.link.snr_db} dB`;
      b.append(img);
    }
    const snr = document.createElement("span");
    snr.textContent = `${it.label} · ${it.settings.link.snr_db} dB`;
    const q = document.createElement("span");
    q.className = it.status === "ok" ? "" : "failed";
    q.textContent = it.status === "ok" ? fmt((it.metrics || {}).psnr_db, 2, " dB") : (it.error || {}).code || it.status;
    b.append(snr, q);
    b.addEventListener("click", () => show(it));
    strip.append(b);
  }
}

// ---------------------------------------------------------------- the sweep

async function startSweep() {
  clearError();
  if (!state.source) {
    showError("No photo yet.", "Pick a sample photo or upload an image first.");
    return;
  }
  let job;
  try {
    job = await api("/api/jobs", {
      method: "POST",
      json: { kind: "sweep", source: state.source, settings: settings(), sweep: $("sweep-range").value },
    });
  } catch (e) {
    showError("The studio refused the sweep.", e.message);
    return;
  }
  state.sweepJob = job.job_id;
  $("sweep-box").hidden = false;
  $("sweep").disabled = true;
  $("cancel").disabled = false;
  $("sweep-download").replaceChildren();
  // each finished point joins the strip of past results, in the order the points came in
  const joined = new Set();
  let joining = Promise.resolve();
  const join = (points) => {
    for (const p of points) {
      if (joined.has(p.item_id)) continue;
      joined.add(p.item_id);
      joining = joining.then(async () => {
        try {
          addToStrip(await api(`/api/items/${p.item_id}`));
        } catch (e) {
          // an item the tab no longer keeps: the sweep's plot still has the point
        }
      });
    }
  };
  const done = await follow(job, (j) => {
    $("sweep-status").textContent =
      `${j.state}: ${j.done} of ${j.total} points · ${j.elapsed_s.toFixed(1)} s · ${j.label}, ${j.settings.mode || "sender's mode"}`;
    drawSweep(j);
    join(j.points);
  });
  $("sweep").disabled = false;
  $("cancel").disabled = true;
  if (!done) return;
  if (done.state === "failed") showError("The sweep failed.", done.error ? done.error.message : "");
  if (done.points.length) {
    const a = document.createElement("a");
    a.href = fileUrl(`/api/jobs/${done.job_id}/files/sweep.json`);
    a.textContent = "sweep.json";
    a.setAttribute("download", "");
    $("sweep-download").append(a);
  }
}

async function cancelSweep() {
  if (!state.sweepJob) return;
  try {
    await api(`/api/jobs/${state.sweepJob}/cancel`, { method: "POST" });
  } catch (e) {
    showError("Could not cancel.", e.message);
  }
}

function drawSweep(job) {
  const svg = $("sweep-plot");
  svg.replaceChildren();
  const width = svg.clientWidth || 800;
  const snrs = job.sweep.snr_db;
  const x0 = Math.min(...snrs);
  const x1 = Math.max(...snrs);
  const kind = (job.settings.link || {}).snr_kind === "ebn0" ? "Eb/N0" : "Es/N0";
  const floor = -7; // BER axis: 1e-7 .. 1; no errors at all is drawn hollow on the floor
  const panels = [
    { key: "psnr_db", label: "PSNR (dB)", left: 50, log: false },
    { key: "ber", label: "decoded BER", left: width / 2 + 40, log: true },
  ];
  const pw = width / 2 - 70;
  const top = 18;
  const ph = 170;
  for (const p of panels) {
    const pts = job.points.filter((q) => q[p.key] !== null && q[p.key] !== undefined);
    const val = (q) => (p.log ? Math.log10(Math.max(q[p.key], 10 ** floor)) : q[p.key]);
    const lo = p.log ? floor : Math.min(0, ...pts.map(val));
    const hi = p.log ? 0 : Math.max(5, Math.ceil(Math.max(...pts.map(val), 0) / 5) * 5);
    const sx = (x) => p.left + (x1 === x0 ? pw / 2 : ((x - x0) / (x1 - x0)) * pw);
    const sy = (y) => top + ph - ((y - lo) / (hi - lo)) * ph;
    svg.append(svgEl("rect", { x: p.left, y: top, width: pw, height: ph, fill: "none", stroke: "#d0d5dd" }));
    svg.append(svgEl("text", { x: p.left, y: top - 5 }, p.label));
    const yticks = p.log ? [-7, -6, -5, -4, -3, -2, -1, 0] : [lo, (lo + hi) / 2, hi];
    for (const y of yticks) {
      svg.append(svgEl("line", { x1: p.left - 3, x2: p.left, y1: sy(y), y2: sy(y), stroke: "#98a2b3" }));
      const label = p.log ? (y === 0 ? "1" : `1e${y}`) : String(y);
      svg.append(svgEl("text", { x: p.left - 5, y: sy(y) + 4, "text-anchor": "end" }, label));
    }
    for (const x of snrs) {
      svg.append(svgEl("line", { x1: sx(x), x2: sx(x), y1: top + ph, y2: top + ph + 3, stroke: "#98a2b3" }));
      svg.append(svgEl("text", { x: sx(x), y: top + ph + 15, "text-anchor": "middle" }, String(x)));
    }
    svg.append(svgEl("text", { x: p.left + pw / 2, y: top + ph + 30, "text-anchor": "middle" }, `${kind} (dB)`));
    if (pts.length > 1) {
      const d = pts.map((q) => `${sx(q.snr_db).toFixed(1)},${sy(val(q)).toFixed(1)}`).join(" ");
      svg.append(svgEl("polyline", { points: d, fill: "none", stroke: "#2563eb", "stroke-width": 1.5 }));
    }
    for (const q of pts) {
      const none = p.log && q[p.key] === 0;
      const dot = svgEl("circle", {
        cx: sx(q.snr_db),
        cy: sy(val(q)),
        r: 4,
        fill: none ? "white" : "#2563eb",
        stroke: "#2563eb",
        class: "sweep-point",
      });
      const shown = p.log ? (none ? "no bit errors" : fmtBer(q[p.key])) : fmt(q[p.key], 2, " dB");
      dot.append(svgEl("title", {}, `${q.snr_db} dB: ${p.label} ${shown} (click to show this image)`));
      dot.addEventListener("click", async () => show(await api(`/api/items/${q.item_id}`)));
      svg.append(dot);
    }
    for (const q of job.points.filter((r) => r.status !== "ok")) {
      const mark = svgEl("text", { x: sx(q.snr_db), y: top + ph - 4, "text-anchor": "middle", class: "lost" }, "✕");
      mark.append(svgEl("title", {}, `${q.snr_db} dB: ${q.error || q.status}`));
      svg.append(mark);
    }
  }
}

document.addEventListener("DOMContentLoaded", init);
