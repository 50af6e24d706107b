// tplgen emulate web console. Plain browser JavaScript, no build step: everything comes from
// the platform's JSON API and its live stream (GET /api/stream). Values from the platform are
// only ever inserted as text (el()/textContent), never as HTML.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);

// el builds an element: attrs are properties/attributes, children strings or nodes.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// API access (with the token a non-loopback platform asks for, entered once)

const state = {
  token: localStorage.getItem("tplgen.token") || "",
  devices: [],
  templates: new Map(), // pid -> template doc
  current: null,        // {pid, dn}
  doc: null,            // current device document
  stream: null,
  lastStreamId: 0,
};

class APIError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

async function api(method, path, body, opts = {}) {
  const headers = {};
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
    headers["Content-Type"] = "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, { method, headers, body: payload });
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (resp.status === 401) {
    showTokenPanel(data && data.error);
    throw new APIError(401, (data && data.error) || "API token required", data);
  }
  if (!resp.ok && !(opts.accept || []).includes(resp.status)) {
    throw new APIError(resp.status, (data && data.error) || resp.statusText, data);
  }
  return { status: resp.status, data };
}

function showTokenPanel(msg) {
  $("#token-panel").hidden = false;
  $("#token-button").hidden = false;
  $("#token-error").textContent = state.token ? (msg || "token refused") : "";
  $("#token-input").focus();
}

$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = $("#token-input").value.trim();
  localStorage.setItem("tplgen.token", state.token);
  $("#token-panel").hidden = true;
  startStream();
  refreshAll();
});
$("#token-button").addEventListener("click", () => showTokenPanel());

// ---------------------------------------------------------------------------------------------
// Formatting

function ago(ms) {
  if (!ms) return "never";
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return new Date(ms).toLocaleString();
}

function toMillis(v) {
  if (!v) return 0;
  if (typeof v === "number") return v;
  const t = Date.parse(v);
  return isNaN(t) ? 0 : t;
}

function fmtTime(ms) { return ms ? new Date(ms).toLocaleTimeString() : ""; }

function describeType(d) {
  if (!d) return "";
  const parts = [d.type];
  if (d.type === "string") {
    if (d.max !== undefined) parts.push("≤ " + d.max + " chars");
  } else if (d.min !== undefined || d.max !== undefined) {
    parts.push("[" + (d.min ?? "") + " … " + (d.max ?? "") + "]");
  }
  if (d.step !== undefined && d.type !== "string") parts.push("step " + d.step);
  if (d.unit) parts.push(d.unit);
  if (d.mapping) parts.push(d.mapping.map((m) => m.key + "=" + m.label).join(", "));
  if (d.type === "array" && d.elem) parts.push("of " + d.elem.type);
  if (d.type === "struct" && d.specs) parts.push("{" + d.specs.map((s) => s.id).join(", ") + "}");
  return parts.join(" ");
}

// fmtValue renders a wire value with its enum/bool label and unit.
function fmtValue(d, v) {
  if (v === undefined) return "";
  if (d && d.mapping) {
    const m = d.mapping.find((m) => m.key === String(v));
    if (m) return m.label + " (" + v + ")";
  }
  if (d && (d.type === "int" || d.type === "float") && d.unit) return v + " " + d.unit;
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

// ---------------------------------------------------------------------------------------------
// Typed inputs (control form, action inputs): build, read and check against the template

function inputFor(name, d, required) {
  const common = { name, "data-type": d.type, required: !!required };
  switch (d.type) {
    case "bool":
    case "enum":
    case "stringenum": {
      const opts = [el("option", { value: "" }, required ? "— choose —" : "— unchanged —")];
      for (const m of d.mapping || []) opts.push(el("option", { value: m.key }, m.label + " (" + m.key + ")"));
      return el("select", common, opts);
    }
    case "int":
    case "float":
      return el("input", { ...common, type: "number", min: d.min, max: d.max, step: d.type === "int" ? (d.step || 1) : "any", placeholder: describeType(d) });
    case "timestamp":
      return el("input", { ...common, type: "number", min: 0, step: 1, placeholder: "Unix seconds or ms" });
    case "string":
      return el("input", { ...common, type: "text", maxLength: d.max !== undefined ? d.max : undefined, placeholder: describeType(d) });
    default: // struct, array: JSON
      return el("textarea", { ...common, rows: 2, placeholder: d.type === "struct" ? '{"' + (d.specs || []).map((s) => s.id).join('":…, "') + '":…}' : "[ … ]" });
  }
}

// readValue returns {value} or {error} for one input ({skip:true} when empty and optional).
function readValue(input, d, required) {
  const raw = input.value.trim();
  if (raw === "") return required ? { error: "required" } : { skip: true };
  const chk = (v) => checkValue(d, v);
  switch (d.type) {
    case "bool":
    case "enum": {
      const n = Number(raw);
      return chk(n) || { value: n };
    }
    case "stringenum":
      return chk(raw) || { value: raw };
    case "int":
    case "float":
    case "timestamp": {
      const n = Number(raw);
      if (!isFinite(n)) return { error: "not a number" };
      return chk(n) || { value: n };
    }
    case "string":
      return chk(raw) || { value: input.value };
    default: {
      let v;
      try { v = JSON.parse(raw); } catch (e) { return { error: "not valid JSON: " + e.message }; }
      return chk(v) || { value: v };
    }
  }
}

// checkValue mirrors the platform's wire checks (runtime/template): returns {error} or null.
function checkValue(d, v) {
  const range = (n, what) => {
    if (d.min !== undefined && n < d.min) return { error: what + " " + n + " is below the minimum " + d.min };
    if (d.max !== undefined && n > d.max) return { error: what + " " + n + " is above the maximum " + d.max };
    return null;
  };
  switch (d.type) {
    case "bool":
      return v === 0 || v === 1 ? null : { error: "want 0 or 1" };
    case "enum":
    case "stringenum":
      return (d.mapping || []).some((m) => m.key === String(v)) ? null : { error: String(v) + " is not one of " + (d.mapping || []).map((m) => m.key).join(", ") };
    case "int":
      if (typeof v !== "number" || !Number.isInteger(v)) return { error: "want an integer" };
      return range(v, "value");
    case "float":
      if (typeof v !== "number") return { error: "want a number" };
      return range(v, "value");
    case "timestamp":
      return typeof v === "number" && Number.isInteger(v) && v >= 0 ? null : { error: "want a non-negative integer" };
    case "string":
      if (typeof v !== "string") return { error: "want a string" };
      return range([...v].length, "length");
    case "struct": {
      if (typeof v !== "object" || v === null || Array.isArray(v)) return { error: "want an object" };
      for (const [k, mv] of Object.entries(v)) {
        const spec = (d.specs || []).find((s) => s.id === k);
        if (!spec) return { error: "unknown member " + k };
        if (mv === null) continue;
        const e = checkValue(spec.define, mv);
        if (e) return { error: k + ": " + e.error };
      }
      return null;
    }
    case "array": {
      if (!Array.isArray(v)) return { error: "want an array" };
      for (let i = 0; i < v.length; i++) {
        const e = d.elem ? checkValue(d.elem, v[i]) : null;
        if (e) return { error: "[" + i + "]: " + e.error };
      }
      return null;
    }
  }
  return null;
}

function field(name, label, d, required) {
  const input = inputFor(name, d, required);
  return el("label", { class: "field", dataset: { field: name } },
    label, " ", el("span", { class: "hint" }, describeType(d)), input, el("span", { class: "error" }));
}

// readForm reads every field of a params form; errors are shown inline next to each field.
function readForm(form, defs, requireAll) {
  const params = {};
  let ok = true;
  for (const [name, d] of defs) {
    const wrap = form.querySelector('[data-field="' + CSS.escape(name) + '"]');
    const input = wrap.querySelector("input, select, textarea");
    const r = readValue(input, d, requireAll);
    wrap.querySelector(".error").textContent = r.error || "";
    input.classList.toggle("invalid", !!r.error);
    if (r.error) ok = false;
    else if (!r.skip) params[name] = r.value;
  }
  return ok ? params : null;
}

// showResult puts text on a result line, marked as success or failure.
function showResult(box, ok, text) {
  box.className = "result " + (ok ? "ok" : "bad");
  box.textContent = text;
}

// httpText is how a failed API call reads on the page: "HTTP <status>: <message>".
function httpText(e) { return "HTTP " + e.status + ": " + e.message; }

// showServerError puts a server refusal next to the field it names (params.<id>...), or on
// the form's result line.
function showServerError(form, box, err) {
  const m = /params\.([A-Za-z0-9_]+)/.exec(err.message);
  const wrap = m && form.querySelector('[data-field="' + CSS.escape(m[1]) + '"]');
  if (wrap) {
    wrap.querySelector(".error").textContent = err.message;
    wrap.querySelector("input, select, textarea").classList.add("invalid");
  }
  showResult(box, false, httpText(err));
}

// ---------------------------------------------------------------------------------------------
// Device list

// listEvents counts the stream events that change the device list; listLoads the list
// requests. An answer is shown only if no newer request is on its way and no such event came
// while it was on its way (then the list is asked for again), so a late answer never hides a
// device's newer state.
let listEvents = 0;
let listLoads = 0;

async function loadDevices() {
  for (let attempt = 0; ; attempt++) {
    const seen = listEvents;
    const mine = ++listLoads;
    const { data } = await api("GET", "/api/devices");
    if (mine !== listLoads) return; // a newer request shows the list
    if (seen !== listEvents && attempt < 4) continue;
    state.devices = data || [];
    renderDevices();
    if (state.current && state.doc) fillSubDeviceChoices();
    return;
  }
}

function renderDevices() {
  const tbody = $("#devices tbody");
  tbody.replaceChildren();
  for (const d of state.devices) {
    const id = d.product_id + "/" + d.device_name;
    const cur = state.current && state.current.pid === d.product_id && state.current.dn === d.device_name;
    const seen = d.online ? "online" : ago(toMillis(d.last_seen));
    tbody.append(el("tr", {
      class: (d.online ? "online " : "") + (cur ? "selected" : ""),
      dataset: { device: id, online: d.online ? "true" : "false" },
      onclick: () => { location.hash = "#/device/" + encodeURIComponent(d.product_id) + "/" + encodeURIComponent(d.device_name); },
    }, el("td", {}, el("span", { class: "dot" }), d.device_name), el("td", {}, d.product_id), el("td", { class: "seen" }, seen)));
  }
  $("#devices-empty").hidden = state.devices.length > 0;
}

async function loadProducts() {
  try {
    const { data } = await api("GET", "/api/products");
    const sel = $("#add-device-product");
    sel.replaceChildren(...(data || []).map((p) => el("option", { value: p.product_id }, p.product_id)));
  } catch (e) { /* the list stays empty; the error shows when creating */ }
}

$("#add-device-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const body = { product_id: f.product_id.value, device_name: f.device_name.value.trim() };
  if (f.device_secret.value.trim()) body.device_secret = f.device_secret.value.trim();
  const box = $("#add-device-result");
  try {
    const { data } = await api("POST", "/api/devices", body);
    showResult(box, true, "created " + data.product_id + "/" + data.device_name + "\ndevice_secret: " + data.device_secret);
    await loadDevices();
  } catch (e) { showResult(box, false, httpText(e)); }
});

// ---------------------------------------------------------------------------------------------
// Device page

async function template(pid) {
  if (!state.templates.has(pid)) {
    try {
      const { data } = await api("GET", "/api/products/" + encodeURIComponent(pid));
      state.templates.set(pid, data);
    } catch (e) {
      if (e.status !== 404) throw e;
      state.templates.set(pid, { product_id: pid, properties: [], events: [], actions: [], missing: true });
    }
  }
  return state.templates.get(pid);
}

function devicePath(suffix = "") {
  return "/api/devices/" + encodeURIComponent(state.current.pid) + "/" + encodeURIComponent(state.current.dn) + suffix;
}

async function openDevice(pid, dn) {
  state.current = { pid, dn };
  $("#home").hidden = true;
  $("#device").hidden = false;
  $("#device-title").textContent = pid + "/" + dn;
  renderDevices();
  const tpl = await template(pid);
  buildControlForm(tpl);
  buildActions(tpl);
  resetDeviceTools();
  await loadDevice();
  loadDeviceLogs().catch(logError);
  loadResources().catch(logError);
  loadLibrary().catch(logError);
}

let reloadTimer = null;
function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => loadDevice().catch(logError), 80);
}

// deviceEvents counts the stream events about the current device. An API answer requested
// before the latest of them may predate it: such an answer is not shown over the live state
// (the device document is fetched again; a push answer is dropped).
let deviceEvents = 0;

let deviceLoads = 0;

async function loadDevice() {
  if (!state.current) return;
  const cur = state.current;
  for (let attempt = 0; ; attempt++) {
    const seen = deviceEvents;
    const mine = ++deviceLoads;
    let data;
    try {
      ({ data } = await api("GET", devicePath()));
    } catch (e) {
      if (e.status === 404 && mine === deviceLoads) { showGone(); return; }
      throw e;
    }
    if (state.current !== cur || mine !== deviceLoads) return; // another device, or a newer request
    if (seen !== deviceEvents && attempt < 4) continue; // changed meanwhile: ask again
    state.doc = data;
    renderDevice();
    return;
  }
}

function showGone() {
  $("#device-online").textContent = "deleted";
  $("#device-online").className = "pill off";
}

function renderDevice() {
  const doc = state.doc;
  const tpl = state.templates.get(state.current.pid);
  const on = $("#device-online");
  on.textContent = doc.online ? "online" : "offline";
  on.className = "pill " + (doc.online ? "on" : "off");
  on.dataset.online = doc.online ? "true" : "false";
  $("#device-lastseen").textContent = doc.online ? "" : "last seen " + ago(toMillis(doc.last_seen));
  const info = doc.info ? Object.entries(doc.info).map(([k, v]) => k + ": " + (typeof v === "object" ? JSON.stringify(v) : v)).join(" · ") : "";
  $("#device-info").textContent = (tpl.missing ? "no data template for this product · " : "") + info;
  renderProperties(tpl, doc);
  renderPending(doc.pending_control);
  renderEvents(tpl, doc.events || []);
  renderOTA(doc.ota);
  renderGateway(doc);
  renderBinding(doc.binding);
  renderExtra(doc);
}

function renderProperties(tpl, doc) {
  const tbody = $("#properties tbody");
  tbody.replaceChildren();
  const reported = doc.reported || {};
  const at = doc.reported_at || {};
  const pending = doc.pending_control || {};
  const known = new Set();
  for (const p of tpl.properties) {
    known.add(p.id);
    tbody.append(el("tr", { id: "prop-" + p.id, dataset: { prop: p.id } },
      el("td", {}, el("strong", {}, p.name || p.id), el("div", { class: "muted small" }, p.id + (p.mode === "rw" ? " · rw" : " · r"))),
      el("td", { class: "small" }, describeType(p.define)),
      el("td", { class: "value" }, fmtValue(p.define, reported[p.id])),
      el("td", { class: "small muted" }, fmtTime(at[p.id])),
      el("td", { class: "pending small" }, fmtValue(p.define, pending[p.id]))));
  }
  for (const [k, v] of Object.entries(reported)) {
    if (!known.has(k)) tbody.append(el("tr", { dataset: { prop: k } }, el("td", {}, k), el("td", { class: "muted small" }, "not in template"), el("td", { class: "value" }, JSON.stringify(v)), el("td"), el("td")));
  }
}

function renderPending(p) {
  const has = p && Object.keys(p).length > 0;
  $("#pending").hidden = !has;
  $("#pending-json").textContent = has ? JSON.stringify(p, null, 1) : "";
}

function buildControlForm(tpl) {
  const form = $("#control-form");
  const box = form.querySelector(".fields");
  box.replaceChildren();
  const rw = tpl.properties.filter((p) => p.mode === "rw");
  for (const p of rw) box.append(field(p.id, p.name || p.id, p.define, false));
  form.hidden = rw.length === 0;
  $("#control-result").textContent = "";
  form.defs = rw.map((p) => [p.id, p.define]);
}

$("#control-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const box = $("#control-result");
  const params = readForm(form, form.defs, false);
  if (!params) { showResult(box, false, "fix the fields marked in red"); return; }
  if (Object.keys(params).length === 0) { showResult(box, false, "fill at least one property to control"); return; }
  $("#control-submit").disabled = true;
  showResult(box, true, "sending…");
  try {
    const { status, data } = await api("POST", devicePath("/control"), { params }, { accept: [202] });
    if (status === 202) showResult(box, true, "device offline: stored as pending control");
    else showResult(box, data.code === 0, "reply code " + data.code + (data.status ? " · " + data.status : ""));
    scheduleReload();
  } catch (e) {
    showServerError(form, box, e);
  } finally {
    $("#control-submit").disabled = false;
  }
});

function buildActions(tpl) {
  const box = $("#actions");
  box.replaceChildren();
  if (tpl.actions.length === 0) box.append(el("p", { class: "muted" }, "This product has no actions."));
  for (const a of tpl.actions) {
    const form = el("form", { class: "action", id: "action-" + a.id, novalidate: true },
      el("h4", {}, (a.name || a.id) + " ", el("span", { class: "muted small" }, a.id)),
      a.input.map((p) => field(p.id, p.name || p.id, p.define, true)),
      el("button", { type: "submit" }, "Invoke"),
      el("div", { class: "result" }),
      el("table", { class: "output", hidden: true }));
    form.defs = a.input.map((p) => [p.id, p.define]);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); invokeAction(form, a); });
    box.append(form);
  }
}

async function invokeAction(form, a) {
  const box = form.querySelector(".result");
  const out = form.querySelector(".output");
  out.hidden = true;
  const params = readForm(form, form.defs, true);
  if (!params) { showResult(box, false, "fix the fields marked in red"); return; }
  const btn = form.querySelector("button");
  btn.disabled = true;
  showResult(box, true, "waiting for the device…");
  try {
    const { data } = await api("POST", devicePath("/actions/" + encodeURIComponent(a.id)), { params });
    showResult(box, data.code === 0, "reply code " + data.code + (data.status ? " · " + data.status : ""));
    const resp = data.response || {};
    out.replaceChildren(...Object.entries(resp).map(([k, v]) => {
      const spec = a.output.find((o) => o.id === k);
      return el("tr", { dataset: { output: k } }, el("th", {}, spec && spec.name ? spec.name : k), el("td", {}, fmtValue(spec && spec.define, v)));
    }));
    out.hidden = Object.keys(resp).length === 0;
  } catch (e) {
    showServerError(form, box, e);
  } finally {
    btn.disabled = false;
  }
}

function renderEvents(tpl, events) {
  const tbody = $("#events tbody");
  tbody.replaceChildren();
  for (const e of events.slice(-100).reverse()) tbody.append(eventRow(tpl, e));
  if (events.length === 0) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No events yet.")));
}

function eventRow(tpl, e) {
  const def = tpl.events.find((x) => x.id === e.event_id);
  const params = Object.entries(e.params || {}).map(([k, v]) => {
    const p = def && def.params.find((x) => x.id === k);
    return (p && p.name ? p.name : k) + ": " + fmtValue(p && p.define, v);
  }).join(" · ");
  return el("tr", { dataset: { event: e.event_id } },
    el("td", { class: "small" }, fmtTime(e.timestamp)),
    el("td", {}, def && def.name ? def.name : e.event_id),
    el("td", {}, el("span", { class: "tag " + e.type }, e.type)),
    el("td", { class: "small" }, params));
}

// ---------------------------------------------------------------------------------------------
// OTA

$("#ota-upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("#ota-file").files[0];
  const version = $("#ota-version").value.trim();
  const box = $("#ota-upload-result");
  if (!file) { showResult(box, false, "choose an image file"); return; }
  try {
    const q = "?product=" + encodeURIComponent(state.current.pid) + "&version=" + encodeURIComponent(version);
    const { data } = await api("POST", "/api/firmware" + q, file);
    showResult(box, true, "uploaded " + data.version + ": " + data.size + " bytes, md5 " + data.md5);
    $("#ota-push-version").value = data.version;
  } catch (e) { showResult(box, false, httpText(e)); }
});

$("#ota-push-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const seen = deviceEvents;
  try {
    const { data } = await api("POST", devicePath("/ota"), { version: $("#ota-push-version").value.trim() });
    if (seen === deviceEvents) renderOTA(data); // else the stream already showed newer progress
  } catch (e) { $("#ota-state").textContent = httpText(e); }
});

function renderOTA(job) {
  const bar = $("#ota-progress");
  if (!job) {
    bar.value = 0;
    $("#ota-percent").textContent = "";
    $("#ota-state").textContent = "no job";
    return;
  }
  const pct = job.state === "done" ? 100 : job.percent || 0;
  bar.value = pct;
  bar.dataset.state = job.state;
  $("#ota-percent").textContent = pct + " %";
  let s = job.state + " → " + job.target_version;
  if (job.state === "fail") s += " (code " + job.result_code + (job.result_msg ? ": " + job.result_msg : "") + ")";
  if (job.reported_version) s += " · device reports " + job.reported_version;
  $("#ota-state").textContent = s;
  $("#ota-state").dataset.state = job.state;
}

// ---------------------------------------------------------------------------------------------
// Gateway topology and the sections other features contribute

// The platform marks a device as a gateway (doc.gateway_role) once it subscribes to its
// gateway reply topic or has sub-devices; only then are the gateway tools shown.
async function renderGateway(doc) {
  const box = $("#gateway");
  const role = doc.gateway_role;
  const parts = [];
  if (doc.gateway) {
    parts.push(el("p", {}, "Sub-device of gateway ", deviceLink(doc.gateway.product_id, doc.gateway.device_name)));
  }
  if (role && role.sub_devices > 0) {
    try {
      const { data } = await api("GET", devicePath("").replace("/api/devices/", "/api/gateways/") + "/subdevices");
      parts.push(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Sub-device"), el("th", {}, "State"))),
        el("tbody", {}, (data || []).map((s) => el("tr", { class: s.online ? "online" : "" },
          el("td", {}, el("span", { class: "dot" }), deviceLink(s.product_id, s.device_name)),
          el("td", {}, s.online ? "online" : "offline"))))));
    } catch (e) { parts.push(el("p", { class: "result bad" }, "sub-devices: " + httpText(e))); }
  } else if (role) {
    parts.push(el("p", { class: "muted" }, "A gateway with no sub-devices bound."));
  }
  if (parts.length === 0) {
    parts.push(el("p", { class: "muted" }, "No gateway relations. The gateway tools appear once the device subscribes to its $gateway/operation/result topic."));
  }
  $("#gateway-tools").hidden = !role;
  $("#gateway-ops").hidden = !role;
  box.replaceChildren(...parts);
  fillSubDeviceChoices();
}

// fillSubDeviceChoices offers every other device as a sub-device of the current one.
function fillSubDeviceChoices() {
  const sel = $("#gateway-sub");
  const keep = sel.value;
  const cur = state.current && state.current.pid + "/" + state.current.dn;
  sel.replaceChildren(...state.devices.filter((d) => d.product_id + "/" + d.device_name !== cur).map((d) => {
    const id = d.product_id + "/" + d.device_name;
    return el("option", { value: id }, id);
  }));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

// changeSubDevice binds (1) or unbinds (0) the chosen sub-device: the platform changes its
// topology, then pushes "change" to the gateway and waits a little for its acknowledgement.
async function changeSubDevice(status) {
  const box = $("#gateway-result");
  const id = $("#gateway-sub").value;
  if (!id) { showResult(box, false, "no other device to bind"); return; }
  const [product_id, device_name] = [id.slice(0, id.indexOf("/")), id.slice(id.indexOf("/") + 1)];
  const path = devicePath("/change?timeout=5s").replace("/api/devices/", "/api/gateways/");
  try {
    const { status: code, data } = await api("POST", path, { status, devices: [{ product_id, device_name }] }, { accept: [202] });
    const what = (status ? "bound " : "unbound ") + id;
    showResult(box, true, code === 202 ? what + "; the gateway did not acknowledge (" + (data.status || "no answer") + ")" : what + "; the gateway acknowledged");
  } catch (e) { showResult(box, false, httpText(e)); }
  scheduleReload();
}

$("#gateway-form").addEventListener("submit", (ev) => { ev.preventDefault(); changeSubDevice(1); });
$("#gateway-unbind").addEventListener("click", () => changeSubDevice(0));

// Cloud-initiated gateway operations (docs/PROTOCOL.md §5.2): the platform pushes the message
// and answers with the gateway's acknowledgement (200) or 202 when none came in time. Unbind
// all asks for a second click first.

function disarmUnbindAll() {
  const b = $("#gateway-unbind-all");
  b.classList.remove("armed");
  b.textContent = "Unbind all";
}

async function gatewayOp(btn) {
  const op = btn.dataset.op;
  const box = $("#gateway-op-result");
  const pre = $("#gateway-op-ack");
  if (op === "unbind_all" && !btn.classList.contains("armed")) {
    btn.classList.add("armed");
    btn.textContent = "Click again to unbind every sub-device";
    return;
  }
  disarmUnbindAll();
  const body = btn.dataset.status !== undefined ? { status: Number(btn.dataset.status) } : {};
  const what = op + (body.status !== undefined ? " (status " + body.status + ")" : "");
  const path = devicePath("/" + op + "?timeout=5s").replace("/api/devices/", "/api/gateways/");
  pre.hidden = true;
  for (const b of document.querySelectorAll("#gateway-ops button")) b.disabled = true;
  showResult(box, true, what + " sent; waiting for the gateway…");
  const cur = state.current;
  try {
    const { status: code, data } = await api("POST", path, body, { accept: [202] });
    if (state.current !== cur) return; // another device's page by now
    if (code === 202) {
      showResult(box, false, what + " sent; " + (data.status || "no acknowledgement"));
      pre.textContent = "sent " + JSON.stringify(data.sent);
    } else {
      showResult(box, true, what + " sent; the gateway acknowledged");
      pre.textContent = "sent " + JSON.stringify(data.sent) + "\nack  " + JSON.stringify(data.ack);
    }
    box.dataset.op = op;
    box.dataset.acked = code === 200 ? "true" : "false";
    pre.hidden = false;
  } catch (e) {
    if (state.current === cur) showResult(box, false, httpText(e));
  } finally {
    for (const b of document.querySelectorAll("#gateway-ops button")) b.disabled = false;
  }
  if (state.current === cur) scheduleReload();
}

for (const b of document.querySelectorAll("#gateway-ops button")) b.addEventListener("click", () => gatewayOp(b).catch(logError));

function deviceLink(pid, dn) {
  return el("a", { href: "#/device/" + encodeURIComponent(pid) + "/" + encodeURIComponent(dn) }, pid + "/" + dn);
}

const shownKeys = new Set(["product_id", "device_name", "online", "last_seen", "reported", "reported_at",
  "pending_control", "info", "events", "ota", "gateway", "gateway_role", "subdevices", "certificate", "connects", "binding",
  "resources"]);

function renderExtra(doc) {
  const box = $("#extra");
  box.replaceChildren();
  for (const [k, v] of Object.entries(doc)) {
    if (shownKeys.has(k)) continue;
    box.append(el("h4", {}, k), el("pre", { class: "json", dataset: { section: k } }, JSON.stringify(v, null, 1)));
  }
  $("#extra-card").hidden = box.childElementCount === 0;
}

$("#device-delete").addEventListener("click", async () => {
  if (!confirm("Delete " + state.current.pid + "/" + state.current.dn + "? Its connection is closed and its state removed.")) return;
  try {
    await api("DELETE", devicePath());
    location.hash = "#/";
    await loadDevices();
  } catch (e) { alert(httpText(e)); }
});

// ---------------------------------------------------------------------------------------------
// RRPC and broadcast, app binding, device logs

// resetDeviceTools clears what the previous device's tools showed.
function resetDeviceTools() {
  for (const id of ["#rrpc-result", "#broadcast-result", "#binding-result", "#log-level-result", "#gateway-result",
    "#gateway-op-result", "#res-upload-result", "#res-push-result"]) $(id).textContent = "";
  $("#rrpc-reply").hidden = true;
  $("#gateway-op-ack").hidden = true;
  disarmUnbindAll();
  $("#res-jobs tbody").replaceChildren();
  $("#res-uploads tbody").replaceChildren();
  $("#res-reported").textContent = "";
  $("#devlog").replaceChildren();
  $("#devlog-summary").textContent = "";
}

// payloadBody is the RRPC/broadcast request body for a text payload.
function payloadBody(text) { return { payload: text }; }

$("#rrpc-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const box = $("#rrpc-result");
  const reply = $("#rrpc-reply");
  reply.hidden = true;
  const timeout = $("#rrpc-timeout").value.trim();
  if (timeout && !/^\d+(\.\d+)?(ms|s|m)$/.test(timeout)) { showResult(box, false, "timeout: want a duration like 4s or 500ms"); return; }
  $("#rrpc-send").disabled = true;
  showResult(box, true, "waiting for the device…");
  try {
    const q = timeout ? "?timeout=" + encodeURIComponent(timeout) : "";
    const { data } = await api("POST", devicePath("/rrpc" + q), payloadBody($("#rrpc-payload").value));
    showResult(box, true, "reply to processId " + data.process_id + (data.payload === undefined ? " (binary, base64)" : ""));
    reply.textContent = data.payload !== undefined ? data.payload : data.payload_base64;
    reply.hidden = false;
  } catch (e) {
    showResult(box, false, httpText(e));
  } finally {
    $("#rrpc-send").disabled = false;
  }
});

$("#broadcast-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const box = $("#broadcast-result");
  try {
    const { data } = await api("POST", "/api/products/" + encodeURIComponent(state.current.pid) + "/broadcast", payloadBody($("#broadcast-payload").value));
    const names = (data && data.devices) || [];
    showResult(box, true, "delivered to " + names.length + " online device" + (names.length === 1 ? "" : "s") + (names.length ? ": " + names.join(", ") : ""));
  } catch (e) { showResult(box, false, httpText(e)); }
});

function renderBinding(b) {
  const st = $("#binding-state");
  if (b && b.bound) {
    st.textContent = "bound to " + b.user + (b.via ? " via " + b.via : "") + (b.bound_at ? " · " + new Date(b.bound_at).toLocaleString() : "");
    st.className = "bound";
  } else {
    st.textContent = "not bound";
    st.className = "muted";
  }
  st.dataset.bound = b && b.bound ? "true" : "false";
  $("#unbind").disabled = !(b && b.bound);
}

$("#bind-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const box = $("#binding-result");
  const user = $("#bind-user").value.trim();
  if (!user) { showResult(box, false, "user: required"); $("#bind-user").classList.add("invalid"); return; }
  $("#bind-user").classList.remove("invalid");
  try {
    const { data } = await api("POST", devicePath("/bind"), { user });
    renderBinding(data);
    showResult(box, true, "bound; the device was sent bind_device");
  } catch (e) { showResult(box, false, httpText(e)); }
});

$("#unbind").addEventListener("click", async () => {
  const box = $("#binding-result");
  try {
    const { data } = await api("POST", devicePath("/unbind"), {});
    renderBinding(data);
    showResult(box, true, "unbound; the device was sent unbind_device");
  } catch (e) { showResult(box, false, httpText(e)); }
});

$("#app-token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const box = $("#binding-result");
  const body = {};
  const user = $("#app-token-user").value.trim();
  const ttl = $("#app-token-ttl").value.trim();
  if (user) body.user = user;
  if (ttl) body.ttl = ttl;
  try {
    const { data } = await api("POST", devicePath("/app-token"), body);
    showResult(box, true, "app token " + data.token + "\nexpires " + new Date(data.expires_at).toLocaleString());
  } catch (e) { showResult(box, false, httpText(e)); }
});

const logLevelNames = ["none", "error", "warn", "info", "debug"];

async function loadDeviceLogs() {
  if (!state.current) return;
  const cur = state.current;
  const { data } = await api("GET", devicePath("/logs?limit=200"));
  if (state.current !== cur) return;
  $("#log-level").value = String(data.level);
  $("#devlog-summary").textContent = "level " + (logLevelNames[data.level] || data.level) + " · " + data.total + " line" + (data.total === 1 ? "" : "s") + " received" + (data.dropped ? " · " + data.dropped + " dropped (oldest)" : "");
  $("#devlog").replaceChildren(...(data.lines || []).map((l) =>
    el("li", { class: l.level || "", dataset: { seq: String(l.seq) } }, fmtTime(toMillis(l.at)) + " " + l.text)));
  $("#devlog").scrollTop = $("#devlog").scrollHeight;
}

$("#log-level-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const box = $("#log-level-result");
  try {
    const { data } = await api("PUT", devicePath("/log-level"), { level: Number($("#log-level").value) });
    showResult(box, true, "level " + logLevelNames[data.level] + (data.pushed ? ": pushed to the device" : ": the device gets it when it asks (offline now)"));
    await loadDeviceLogs();
  } catch (e) { showResult(box, false, httpText(e)); }
});
$("#devlog-refresh").addEventListener("click", () => loadDeviceLogs().catch(logError));

// ---------------------------------------------------------------------------------------------
// Resources (files other than firmware, docs/PROTOCOL.md §7.5): the product's library, the
// transfers pushed to the device with their live progress, what the device reports and what it
// uploaded.

// resEvents counts the stream's "resources" events for the current device; an answer asked for
// before the latest of them is not shown (the state is asked for again), as for the device.
let resEvents = 0;
let resLoads = 0;

// scheduleResources asks for the resource state at most every 60 ms while progress streams in
// (a transfer reports every few percent); loadResources asks again if more came meanwhile.
let resTimer = null;
function scheduleResources() {
  if (resTimer) return;
  resTimer = setTimeout(() => { resTimer = null; loadResources().catch(logError); }, 60);
}

async function loadResources() {
  if (!state.current) return;
  const cur = state.current;
  for (let attempt = 0; ; attempt++) {
    const seen = resEvents;
    const mine = ++resLoads;
    const { data } = await api("GET", devicePath("/resources"));
    if (state.current !== cur || mine !== resLoads) return;
    if (seen !== resEvents && attempt < 4) continue;
    renderResources(data || {});
    return;
  }
}

function fmtSize(n) {
  if (n === undefined || n === null) return "";
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1024 / 1024).toFixed(1) + " MiB";
}

function resultText(x) {
  if (x.state !== "fail" && x.state !== "delete_failed") return x.state;
  return x.state + " (code " + x.result_code + (x.result_msg ? ": " + x.result_msg : "") + ")";
}

function renderResources(st) {
  const jobs = $("#res-jobs tbody");
  jobs.replaceChildren(...(st.jobs || []).map((j) => {
    const pct = j.state === "done" ? 100 : j.percent || 0;
    const gone = j.state === "deleted" || j.state === "deleting";
    return el("tr", { dataset: { resource: j.name, state: j.state } },
      el("td", {}, el("strong", {}, j.name), " ", j.version, el("div", { class: "muted small" }, fmtSize(j.size) + (j.pushes > 1 ? " · pushed " + j.pushes + "×" : ""))),
      el("td", {}, j.api),
      el("td", {}, el("progress", { max: 100, value: pct }), " ", el("span", { class: "percent" }, pct + " %")),
      el("td", { class: "state" }, resultText(j)),
      el("td", { class: "small muted" }, fmtTime(toMillis(j.updated))),
      el("td", {}, el("button", { type: "button", class: "secondary", disabled: gone, title: "push del_resource to the device", onclick: () => deleteResource(j.name) }, "Delete")));
  }));
  if (!jobs.childElementCount) jobs.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "Nothing pushed to this device yet.")));

  const rep = st.reported || [];
  $("#res-reported").textContent = rep.length ? rep.map((r) => r.resource_name + " " + r.version + (r.resource_type && r.resource_type !== "FILE" ? " (" + r.resource_type + ")" : "")).join(" · ") : "nothing reported";

  const ups = $("#res-uploads tbody");
  ups.replaceChildren(...(st.uploads || []).map((u) => {
    const done = u.state === "done" || u.state === "uploaded";
    return el("tr", { dataset: { upload: u.name, state: u.state } },
      el("td", {}, done ? uploadLink(u) : u.name, u.version ? " " + u.version : ""),
      el("td", {}, u.api),
      el("td", {}, fmtSize(u.size)),
      el("td", { class: "state" }, resultText(u) + (u.state === "uploading" ? " " + (u.percent || 0) + " %" : "")),
      el("td", { class: "small muted" }, fmtTime(toMillis(u.updated))));
  }));
  if (!ups.childElementCount) ups.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No uploads from this device.")));
  if (st.dropped_uploads) ups.append(el("tr", {}, el("td", { colspan: 5, class: "muted small" }, st.dropped_uploads + " older upload records dropped")));
}

// uploadLink downloads a device upload (GET /api/uploads/{key}); with an API token the file is
// fetched with it, as a plain link cannot send the header.
function uploadLink(u) {
  const href = "/api/uploads/" + encodeURIComponent(u.token);
  return el("a", { href, download: u.name, onclick: async (ev) => {
    if (!state.token) return;
    ev.preventDefault();
    try {
      const resp = await fetch(href, { headers: { Authorization: "Bearer " + state.token } });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const url = URL.createObjectURL(await resp.blob());
      const a = el("a", { href: url, download: u.name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) { logError(e); }
  } }, u.name);
}

let libTimer = null;
function scheduleLibrary() {
  if (libTimer) return;
  libTimer = setTimeout(() => { libTimer = null; loadLibrary().catch(logError); }, 100);
}

// libLoads numbers the library requests; an answer older than the one shown is dropped.
// libWant is the resource to select once a list holding it is shown (the one just uploaded).
let libLoads = 0;
let libShown = 0;
let libWant = null;

async function loadLibrary() {
  if (!state.current) return;
  const cur = state.current;
  const mine = ++libLoads;
  const { data } = await api("GET", "/api/resources?product=" + encodeURIComponent(cur.pid));
  if (state.current !== cur || mine < libShown) return;
  libShown = mine;
  const sel = $("#res-push-name");
  let keep = sel.value;
  const list = (data || []).slice().sort((a, b) => a.name.localeCompare(b.name) || toMillis(b.created) - toMillis(a.created));
  sel.replaceChildren(...list.map((r) => el("option", { value: JSON.stringify([r.name, r.version]) },
    r.name + " " + r.version + " · " + fmtSize(r.size) + (r.type && r.type !== "FILE" ? " · " + r.type : ""))));
  if (!list.length) sel.append(el("option", { value: "" }, "— upload a file first —"));
  if (libWant && [...sel.options].some((o) => o.value === libWant)) {
    keep = libWant;
    libWant = null;
  }
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

// The name follows the chosen file unless the user typed another one.
$("#res-file").addEventListener("change", () => {
  const f = $("#res-file").files[0];
  const name = $("#res-name");
  if (f && (!name.value.trim() || name.value === name.dataset.auto)) {
    name.value = f.name;
    name.dataset.auto = f.name;
  }
});

$("#res-upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const box = $("#res-upload-result");
  const file = $("#res-file").files[0];
  const name = $("#res-name").value.trim() || (file ? file.name : "");
  const version = $("#res-version").value.trim();
  if (!file) { showResult(box, false, "file: choose a file"); return; }
  if (!version) { showResult(box, false, "version: required"); return; }
  $("#res-upload").disabled = true;
  try {
    const q = "?product=" + encodeURIComponent(state.current.pid) + "&name=" + encodeURIComponent(name) + "&version=" + encodeURIComponent(version);
    const { data } = await api("POST", "/api/resources" + q, file);
    libWant = JSON.stringify([data.name, data.version]);
    await loadLibrary();
    showResult(box, true, "uploaded " + data.name + " " + data.version + ": " + data.size + " bytes, md5 " + data.md5);
  } catch (e) {
    showResult(box, false, httpText(e));
  } finally {
    $("#res-upload").disabled = false;
  }
});

$("#res-push-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const box = $("#res-push-result");
  const v = $("#res-push-name").value;
  if (!v) { showResult(box, false, "resource: upload one to the library first"); return; }
  const [name, version] = JSON.parse(v);
  const cur = state.current;
  try {
    const { data } = await api("POST", devicePath("/resources"), { name, version, api: $("#res-api").value });
    if (state.current !== cur) return;
    showResult(box, true, "pushed " + data.name + " " + data.version + " (" + data.api + "): " + data.state);
    await loadResources();
  } catch (e) { if (state.current === cur) showResult(box, false, httpText(e)); }
});

$("#res-library-refresh").addEventListener("click", () => loadLibrary().catch(logError));

async function deleteResource(name) {
  const box = $("#res-push-result");
  const cur = state.current;
  try {
    await api("DELETE", devicePath("/resources/" + encodeURIComponent(name)));
    if (state.current !== cur) return;
    showResult(box, true, "del_resource " + name + " sent to the device");
    await loadResources();
  } catch (e) { if (state.current === cur) showResult(box, false, httpText(e)); }
}

// ---------------------------------------------------------------------------------------------
// Platform log

const maxLogLines = 500;

function addLog(ev) {
  const d = ev.data || {};
  const li = el("li", { class: d.level || "INFO", dataset: { device: ev.device || "" } },
    fmtTime(ev.at) + " " + (d.level || "") + " " + (d.msg || "") + " " +
    Object.entries(d.attrs || {}).map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(" "));
  const ol = $("#log");
  ol.append(li);
  while (ol.childElementCount > maxLogLines) ol.firstElementChild.remove();
  applyLogFilter(li);
  ol.scrollTop = ol.scrollHeight;
}

function applyLogFilter(li) {
  const only = $("#log-this-device").checked && state.current;
  li.hidden = !!only && li.dataset.device !== state.current.pid + "/" + state.current.dn;
}
$("#log-this-device").addEventListener("change", () => document.querySelectorAll("#log li").forEach(applyLogFilter));

function logError(e) { addLog({ at: Date.now(), data: { level: "ERROR", msg: "console: " + e.message } }); }

// ---------------------------------------------------------------------------------------------
// Live stream

function startStream() {
  if (state.stream) state.stream.close();
  const url = "/api/stream" + (state.token ? "?access_token=" + encodeURIComponent(state.token) : "");
  const es = new EventSource(url);
  state.stream = es;
  const pill = $("#stream-state");
  es.addEventListener("open", () => { pill.textContent = "live"; pill.className = "pill on"; });
  es.addEventListener("error", () => { pill.textContent = "reconnecting…"; pill.className = "pill off"; });
  es.addEventListener("hello", () => { pill.textContent = "live"; pill.className = "pill on"; });
  es.addEventListener("reset", () => refreshAll());
  const on = (type, fn) => es.addEventListener(type, (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    fn(ev);
  });
  on("device", (ev) => { listEvents++; patchDevice(ev.device, ev.data); if (isCurrent(ev)) scheduleReload(); });
  on("devices", () => { listEvents++; loadDevices().catch(logError); });
  on("reported", (ev) => { patchDevice(ev.device, { last_seen: ev.at }); if (isCurrent(ev)) applyReported(ev); });
  on("event", (ev) => { if (isCurrent(ev)) applyEvent(ev); });
  for (const t of ["pending", "control", "action"]) on(t, (ev) => { if (isCurrent(ev)) scheduleReload(); });
  // A sub-device bound, unbound, online or offline: its state in the list and both pages.
  on("gateway", (ev) => { listEvents++; loadDevices().catch(logError); if (isCurrent(ev)) scheduleReload(); });
  on("ota", (ev) => { if (isCurrent(ev)) renderOTA(ev.data); });
  on("log", addLog);
  on("update", (ev) => { if (isCurrent(ev)) scheduleReload(); }); // any other feature's change
  // Sections of features that report their changes on the feed under their own name.
  on("binding", (ev) => { if (isCurrent(ev)) scheduleReload(); });
  on("resources", (ev) => { if (isCurrent(ev)) { resEvents++; scheduleResources(); } });
  // A stored object changed (library resource, device upload or upload slot): the library list.
  on("resource_objects", () => { if (state.current) scheduleLibrary(); });
  on("devlog", (ev) => { if (isCurrent(ev)) loadDeviceLogs().catch(logError); });
}

function isCurrent(ev) {
  const cur = !!state.current && ev.device === state.current.pid + "/" + state.current.dn;
  if (cur) deviceEvents++;
  return cur;
}

function patchDevice(id, patch) {
  const d = state.devices.find((x) => x.product_id + "/" + x.device_name === id);
  if (!d) { loadDevices().catch(logError); return; }
  Object.assign(d, patch || {});
  renderDevices();
}

function applyReported(ev) {
  if (!state.doc) return;
  const params = (ev.data && ev.data.params) || {};
  state.doc.reported = Object.assign(state.doc.reported || {}, params);
  state.doc.reported_at = state.doc.reported_at || {};
  for (const k of Object.keys(params)) state.doc.reported_at[k] = ev.at;
  renderProperties(state.templates.get(state.current.pid), state.doc);
}

function applyEvent(ev) {
  if (!state.doc) return;
  state.doc.events = (state.doc.events || []).concat([ev.data]);
  if (state.doc.events.length > 100) state.doc.events = state.doc.events.slice(-100);
  renderEvents(state.templates.get(state.current.pid), state.doc.events);
}

// ---------------------------------------------------------------------------------------------
// Routing

async function route() {
  const m = /^#\/device\/([^/]+)\/([^/]+)$/.exec(location.hash);
  try {
    if (m) {
      await openDevice(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
    } else {
      state.current = null;
      state.doc = null;
      $("#home").hidden = false;
      $("#device").hidden = true;
      renderDevices();
    }
  } catch (e) { logError(e); }
}

async function refreshAll() {
  try {
    await loadDevices();
    await loadProducts();
    await route();
  } catch (e) { if (e.status !== 401) logError(e); }
}

window.addEventListener("hashchange", route);
setInterval(() => { if (state.devices.some((d) => !d.online)) renderDevices(); }, 15000); // "x min ago"
startStream();
refreshAll();
