// The hall view: one card per gate sized so the whole hall fits the screen, a side panel
// with the referral queue, the hall's last hour and the selected gate. Live updates
// arrive as server-sent events; renders are batched per animation frame.
//
// Which commands a gate accepts is the gate's own word (its status's `accepts`, from
// gate/offers.py): this page keeps labels and shortcuts, never a list of commands per state.

import { alerts } from "/static/alerts.js";

const LABELS = {
  release: ["Release through", "r"],
  send_back: ["Send back", "b"],
  reset_alarm: ["Reset alarm", "a"],
  out_of_service: ["Out of service", ""],
  in_service: ["In service", ""],
};
const ORDER = ["release", "send_back", "reset_alarm", "out_of_service", "in_service"];
const CONDITION_TEXT = { // [one, several]
  in_service: ["in service", "in service"], referral: ["referral", "referrals"],
  alarm: ["alarm", "alarms"], emergency: ["emergency", "emergencies"], faulty: ["faulty", "faulty"],
  offline: ["offline", "offline"], out_of_service: ["out of service", "out of service"],
  unknown: ["never seen", "never seen"],
};
const DOC_FIELDS = [
  ["surname", "Surname"], ["given_names", "Given names"], ["document_number", "Document no."],
  ["document_code", "Type"], ["issuing_state", "Issued by"], ["nationality", "Nationality"],
  ["date_of_birth", "Born"], ["sex", "Sex"], ["date_of_expiry", "Expires"],
];

const gates = new Map();
const pending = new Map();
let me = null;
let selected = null;
let hallStats = null;
let frameRequested = false;
const bench = new URLSearchParams(location.search).has("bench");
window.__lat = [];
window.__broker = [];
const benchSeen = new Map();

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function time(ts) {
  return ts ? new Date(ts).toLocaleTimeString([], { hour12: false }) : "";
}

function waited(ts) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(ts)) / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

function secs(v) {
  return v === null || v === undefined ? "–" : `${v.toFixed(1)} s`;
}

function words(s) {
  return s.replaceAll("_", " ");
}

// --- one gate card -----------------------------------------------------------------

function doorBadge(name, g) {
  const s = (g.doors && g.doors[name]) || "unknown";
  return el("span", { class: `door door-${s}`, "data-door": name, title: `${name} door: ${s}`, text: `${name === "entry" ? "In" : "Out"} ${s}` });
}

function hourLine(h) {
  if (!h || !h.travellers) return "last hour: none";
  return `${h.crossings} crossed · ${h.referrals} referred · ${secs(h.median_s)}`;
}

function card(g) {
  const c = el("article", { class: `gate cond-${g.condition} state-${g.state}`, "data-gate": g.gate, tabindex: "0" });
  if (g.gate === selected) c.classList.add("selected");
  if (g.faulty) c.classList.add("faulty");
  if (alerts.flashing(g.gate)) c.classList.add("flash");
  c.append(el("div", { class: "head" }, el("h2", { text: g.gate }), el("span", { class: "state", text: words(g.state) })));
  const flags = el("div", { class: "flags" });
  if (g.emergency) flags.append(el("span", { class: "flag flag-emergency", text: "EMERGENCY: doors released" }));
  if (g.tamper) flags.append(el("span", { class: "flag flag-tamper", text: "TAMPER" }));
  if (g.faulty) flags.append(el("span", { class: "flag flag-faulty", title: g.faulty.detail, text: `FAULTY: bad message on ${g.faulty.leaf}` }));
  if (flags.childElementCount) c.append(flags);
  if (g.doors || g.presence !== null && g.presence !== undefined) {
    const row = el("div", { class: "doors" });
    if (g.doors) row.append(doorBadge("entry", g), doorBadge("exit", g));
    if (g.presence !== null && g.presence !== undefined) {
      row.append(el("span", { class: `presence${g.presence > 1 ? " many" : ""}`, title: "people in the mantrap", text: `inside ${g.presence}` }));
    }
    c.append(row);
  }
  const links = el("ul", { class: "links" });
  for (const [name, s] of Object.entries(g.links || {})) {
    links.append(el("li", { class: `link link-${s}`, title: `${name}: ${s}`, text: name }));
  }
  c.append(links);
  if (g.alarms.length) {
    c.append(el("div", { class: "alarm-line", text: g.alarms.map((a) => a.text + (a.device ? ` (${a.device})` : "")).join("; ") }));
  } else if (g.referral) {
    c.append(el("div", { class: "referral-flag", text: "REFERRAL: " + g.referral.reasons.map((r) => r.text).join("; ") }));
  } else {
    const d = g.last_decision;
    c.append(el("div", { class: "decision", text: d ? `last: ${d.decision} ${time(d.ts)}` : "last: none" }));
  }
  c.append(el("div", { class: "hour", text: hourLine(g.hour) }));
  c.addEventListener("click", () => select(g.gate));
  return c;
}

// --- the selected gate -------------------------------------------------------------

function docTable(doc) {
  const t = el("table", { class: "document" });
  for (const [k, label] of DOC_FIELDS) {
    if (doc[k] !== undefined && doc[k] !== null) t.append(el("tr", {}, el("th", { text: label }), el("td", { text: doc[k] })));
  }
  return t;
}

function photo(g, which, caption) {
  const fig = el("figure", { class: "photo" });
  if (g.referral[which]) {
    fig.append(el("img", { id: `img-${which}`, alt: caption, src: `/api/gates/${g.gate}/referral/${encodeURIComponent(g.referral.txn_id)}/${which}` }));
  } else {
    fig.append(el("div", { class: "nophoto", text: "no image" }));
  }
  fig.append(el("figcaption", { text: caption }));
  return fig;
}

// every score beside the threshold the gate applied, and which side of it is a pass
function scoreRows(r) {
  const f = r.face || {};
  const s = r.scores || {};
  const rows = [];
  const add = (key, label, value, threshold, higherPasses) => {
    if (value === undefined || value === null) return;
    const known = threshold !== undefined && threshold !== null;
    const pass = known ? (higherPasses ? value >= threshold : value <= threshold) : null;
    const rule = known ? `${higherPasses ? "needs ≥" : "refers above"} ${threshold.toFixed(2)}` : "threshold not sent";
    rows.push(el("li", { class: `score ${pass === null ? "" : pass ? "pass" : "fail"}`, "data-score": key },
      el("span", { class: "name", text: label }), el("b", { text: value.toFixed(2) }), el("span", { class: "rule", text: rule })));
  };
  add("match", "match", f.score ?? s.match, f.threshold ?? s.match_threshold, true);
  add("pad", "liveness (PAD)", f.pad_score ?? s.pad, f.pad_threshold, false);
  add("quality", "image quality", f.quality, f.quality_threshold, true);
  const t = r.thumb;
  if (t) {
    if (t.score === null || t.score === undefined) {
      const why = t.reader_fault ? "reader fault" : t.presented === false ? "no thumb given" : "not matched";
      rows.push(el("li", { class: "score fail", "data-score": "thumb" },
        el("span", { class: "name", text: "thumb" }), el("b", { text: "–" }), el("span", { class: "rule", text: why })));
    } else {
      add("thumb", `thumb${t.finger ? " (" + t.finger + ")" : ""}`, t.score, t.threshold, true);
    }
  }
  return rows;
}

// which biometric channel decided, and why the thumb was not asked where the policy wanted it
function decidedBy(r) {
  const b = r.biometric;
  if (!b || (!b.decided_by && !b.fallback)) return null;
  const parts = [];
  if (b.decided_by) parts.push(`decided by ${b.decided_by === "face+thumb" ? "face and thumb" : b.decided_by}`);
  if (b.mode) parts.push(`policy ${words(b.mode)}`);
  if (b.fallback) parts.push(`no thumb: ${words(b.fallback)}`);
  return el("p", { id: "decided-by", class: "note", text: parts.join(" · ") });
}

function answer(g, cmd) {
  const c = g.commands.find((x) => x.command === cmd);
  if (!c) return null;
  const text = c.ack ? (c.ack.accepted ? `accepted ${time(c.ack.ts)}` : `refused: ${c.ack.detail}`) : "waiting for the gate…";
  return el("span", { class: `answer ${c.ack ? (c.ack.accepted ? "ok" : "refused") : "pending"}`, id: `answer-${cmd}`, text });
}

function controls(g) {
  const box = el("div", { class: "controls" });
  const offered = g.accepts === null || g.accepts === undefined ? ORDER : ORDER.filter((c) => g.accepts.includes(c));
  const actions = el("div", { class: "actions" });
  if (g.accepts === null || g.accepts === undefined) {
    actions.append(el("p", { class: "note", text: "This gate does not say which commands it accepts (older software): every command is offered, the gate may refuse." }));
  } else if (!offered.length) {
    actions.append(el("p", { class: "note", id: "no-commands", text: g.online === false ? "The gate is offline: no command can reach it." : `The gate accepts no command in ${words(g.state)}.` }));
  }
  for (const cmd of offered) {
    const [label, key] = LABELS[cmd];
    const b = el("button", { type: "button", id: `cmd-${cmd}`, "data-key": key, text: key ? `${label} [${key.toUpperCase()}]` : label });
    if (!me.allowed.includes(cmd)) { b.disabled = true; b.title = "supervisor only"; }
    b.addEventListener("click", () => send(g.gate, cmd, bound(g, cmd)));
    actions.append(el("div", { class: "cmd" }, b, answer(g, cmd)));
  }
  box.append(actions);
  const log = el("ol", { id: "acks", class: "acks" });
  for (const c of g.commands) {
    const status = c.ack ? (c.ack.accepted ? "accepted" : `refused: ${c.ack.detail}`) : "waiting for the gate…";
    log.append(el("li", { class: c.ack ? (c.ack.accepted ? "ok" : "refused") : "pending", "data-command": c.command,
      text: `${time(c.ts)} ${words(c.command)} by ${c.officer}: ${status}` }));
  }
  box.append(log);
  box.append(el("p", { id: "cmd-result", role: "status" }));
  return box;
}

function gateFacts(g) {
  const t = el("table", { class: "facts" });
  const row = (k, v) => t.append(el("tr", {}, el("th", { text: k }), el("td", { text: v })));
  if (g.doors) row("doors", `entry ${g.doors.entry} · exit ${g.doors.exit}`);
  if (g.presence !== null && g.presence !== undefined) row("in the mantrap", String(g.presence));
  if (g.emergency !== null && g.emergency !== undefined) row("emergency / tamper", `${g.emergency ? "ACTIVE" : "no"} / ${g.tamper ? "ACTIVE" : "no"}`);
  const down = Object.entries(g.links || {}).filter(([, s]) => s !== "up").map(([n, s]) => `${n} ${s}`);
  row("links", down.length ? down.join(", ") : "all up");
  const h = g.hour;
  if (h) {
    row("last hour", `${h.travellers} travellers, ${h.crossings} crossed, ${h.referrals} referred, median ${secs(h.median_s)}`);
    const by = Object.entries(h.by_reason).map(([code, n]) => `${words(code)} ${n} (${(100 * n / Math.max(1, h.travellers)).toFixed(0)} %)`);
    if (by.length) row("referred for", by.join(", "));
  }
  return t;
}

function renderDetail() {
  const aside = document.getElementById("detail");
  const g = gates.get(selected);
  if (!g) { aside.hidden = true; return; }
  aside.hidden = false;
  const keep = aside.dataset.txn && g.referral && aside.dataset.txn === g.referral.txn_id;
  const oldPhotos = keep ? aside.querySelector(".photos") : null;
  aside.replaceChildren();
  aside.dataset.txn = g.referral ? g.referral.txn_id : "";
  aside.append(el("h2", { text: `Gate ${g.gate}: ${words(g.state)}` }), gateFacts(g));
  if (g.referral) {
    const r = g.referral;
    const sec = el("section", { id: "referral", class: "referral" });
    sec.append(el("h3", {}, el("span", { text: `Referral ${r.txn_id} at ${time(r.ts)}, waiting ` }), el("span", { "data-since": r.ts, text: waited(r.ts) })));
    const reasons = el("ul", { class: "reasons" });
    for (const x of r.reasons) reasons.append(el("li", { "data-code": x.code, text: x.text }));
    sec.append(reasons, controls(g));
    // keep the <img> elements across re-renders: no refetch of the same photos
    sec.append(oldPhotos || el("div", { class: "photos" }, photo(g, "portrait", "Chip portrait"), photo(g, "frame", "Live frame")));
    const rows = scoreRows(r);
    sec.append(el("ul", { id: "scores", class: "scores" }, ...(rows.length ? rows : [el("li", { text: "no face scores" })])));
    const decided = decidedBy(r);
    if (decided) sec.append(decided);
    sec.append(docTable(r.document || {}));
    aside.append(sec);
  } else {
    aside.append(el("p", { text: "No open referral." }), controls(g));
  }
  if (g.alarms.length) {
    const ul = el("ul", { class: "alarms" });
    for (const a of g.alarms) ul.append(el("li", { text: `${a.text}${a.device ? " (" + a.device + ")" : ""} ${time(a.ts)}` }));
    aside.append(el("h3", { text: "Alarms" }), ul);
  }
}

function select(gate) {
  selected = gate;
  renderAll();
}

// a release / send-back names the referral on screen, a reset the alarm on screen: the
// gate refuses it for another traveller or a newer alarm
function bound(g, cmd) {
  if ((cmd === "release" || cmd === "send_back") && g.referral) return { txn_id: g.referral.txn_id };
  if (cmd === "reset_alarm" && g.alarm_id) return { alarm_id: g.alarm_id };
  return {};
}

async function send(gate, cmd, binding) {
  const r = await fetch(`/api/gates/${gate}/cmd/${cmd}`, {
    method: "POST", credentials: "same-origin",
    headers: { "X-CSRF-Token": me.csrf, "Content-Type": "application/json" },
    body: JSON.stringify(binding),
  });
  const body = await r.json().catch(() => ({}));
  const out = document.getElementById("cmd-result");
  if (out) out.textContent = r.ok ? `${words(cmd)} sent (${body.command_id})` : `${words(cmd)} refused by the console: ${body.error}`;
}

// --- the hall: queue, counts, last hour --------------------------------------------

function referralQueue() {
  return [...gates.values()].filter((g) => g.referral).sort((a, b) => Date.parse(a.referral.ts) - Date.parse(b.referral.ts));
}

let queueShown = null;

function renderQueue() {
  const box = document.getElementById("queue");
  const queue = referralQueue();
  // rebuilt only when it changes: a list rebuilt under the pointer swallows clicks
  const key = queue.map((g) => `${g.gate}:${g.referral.txn_id}`).join(",") + `|${selected}`;
  if (key === queueShown) return;
  queueShown = key;
  const ol = el("ol", { class: "queue" });
  for (const g of queue) {
    const li = el("li", { "data-gate": g.gate, class: g.gate === selected ? "selected" : "" },
      el("b", { text: g.gate }), el("span", { class: "wait", "data-since": g.referral.ts, text: waited(g.referral.ts) }),
      el("span", { class: "why", text: g.referral.reasons.map((r) => r.text).join("; ") }));
    li.addEventListener("click", () => select(g.gate));
    ol.append(li);
  }
  box.replaceChildren(el("h2", { text: `Referral queue (${queue.length})` }), queue.length ? ol : el("p", { class: "note", text: "No traveller waiting." }));
}

function counts() {
  const n = Object.fromEntries(Object.keys(CONDITION_TEXT).map((k) => [k, 0]));
  let alarms = 0;
  for (const g of gates.values()) { n[g.condition] = (n[g.condition] || 0) + 1; alarms += g.alarms.length; }
  return [n, alarms];
}

function summary() {
  const [n, alarms] = counts();
  const box = document.getElementById("summary");
  const parts = [el("span", { text: `${gates.size} gates` })];
  for (const [k, label] of Object.entries(CONDITION_TEXT)) {
    if (n[k] || k === "faulty" || k === "offline") parts.push(el("span", { class: `count cond-${k}`, id: `count-${k}`, text: `${n[k]} ${label[n[k] === 1 ? 0 : 1]}` }));
  }
  parts.push(el("span", { class: "count", id: "count-open-alarms", text: `${alarms} open alarm${alarms === 1 ? "" : "s"}` }));
  box.replaceChildren(...parts);
}

function renderStats() {
  const box = document.getElementById("hall-stats");
  const h = hallStats && hallStats.hour;
  if (!h) { box.replaceChildren(); return; }
  const rate = h.travellers ? (100 * h.referrals / h.travellers).toFixed(1) : "0.0";
  const reasons = el("ul", { class: "by-reason" });
  for (const [code, count] of Object.entries(h.by_reason)) {
    const pct = h.travellers ? (100 * count / h.travellers).toFixed(1) : "0.0";
    reasons.append(el("li", { "data-code": code, text: `${words(code)}: ${count} (${pct} %)` }));
  }
  box.replaceChildren(
    el("h2", { text: "Hall, last hour" }),
    el("p", { id: "hall-hour", text: `${h.travellers} travellers · ${h.crossings} crossed · ${h.referrals} referred (${rate} %) · median ${secs(h.median_s)} per traveller` }),
    reasons,
  );
}

function renderAll() {
  const hall = document.getElementById("hall");
  hall.replaceChildren(...[...gates.values()].sort((a, b) => a.gate.localeCompare(b.gate)).map(card));
  fitHall();
  renderDetail();
  renderQueue();
  summary();
}

// the columns that give the largest cards (about 1.4 : 1) with every gate on screen:
// 50 gates fit 1920 x 1080 at about 190 x 125 px each
function fitHall() {
  const hall = document.getElementById("hall");
  const n = Math.max(1, gates.size);
  const w = hall.clientWidth, h = hall.clientHeight;
  let best = 1, size = 0;
  for (let cols = 1; cols <= n; cols++) {
    const s = Math.min(w / cols / 1.4, h / Math.ceil(n / cols));
    if (s > size) { size = s; best = cols; }
  }
  hall.style.setProperty("--cols", String(best));
  hall.style.setProperty("--rows", String(Math.ceil(n / best)));
}

function flush() {
  frameRequested = false;
  const hall = document.getElementById("hall");
  const now = Date.now();
  for (const g of pending.values()) {
    const old = hall.querySelector(`[data-gate="${CSS.escape(g.gate)}"]`);
    const fresh = card(g);
    if (old) old.replaceWith(fresh); else renderAll();
    if (g.gate === selected) renderDetail();
    if (bench && g.status_ts && benchSeen.get(g.gate) !== g.status_ts) {
      benchSeen.set(g.gate, g.status_ts); // one sample per status message, when first on screen
      const sent = Date.parse(g.status_ts);
      window.__lat.push(now - sent);
      window.__broker.push(g.heard_ms - sent); // gate -> broker -> console leg
    }
  }
  pending.clear();
  renderQueue();
  summary();
}

function update(g) {
  alerts.compare(gates.get(g.gate), g);
  gates.set(g.gate, g);
  pending.set(g.gate, g);
  if (!frameRequested) { frameRequested = true; requestAnimationFrame(flush); }
}

function connect() {
  const banner = document.getElementById("banner");
  const es = new EventSource("/api/stream");
  es.addEventListener("hall", (ev) => {
    const snap = JSON.parse(ev.data);
    gates.clear();
    for (const g of snap.gates) gates.set(g.gate, g);
    hallStats = snap.stats || null;
    document.getElementById("broker-banner").hidden = snap.broker;
    banner.hidden = true;
    document.body.dataset.live = "1";
    renderAll();
    renderStats();
  });
  es.addEventListener("gate", (ev) => update(JSON.parse(ev.data)));
  es.addEventListener("alert", (ev) => {  // security alarms, sent to supervisors only
    const a = document.getElementById("alert-banner");
    a.textContent = JSON.parse(ev.data).text;
    a.hidden = false;
  });
  es.addEventListener("stats", (ev) => { hallStats = JSON.parse(ev.data); renderStats(); });
  es.addEventListener("link", (ev) => { document.getElementById("broker-banner").hidden = JSON.parse(ev.data).broker; });
  es.onerror = async () => {
    banner.hidden = false;
    document.body.dataset.live = "0";
    if (es.readyState === EventSource.CLOSED) {
      // closed for good (e.g. 401 after the session ended): back to sign-in if so
      const r = await fetch("/api/me", { credentials: "same-origin" }).catch(() => null);
      if (r && r.status === 401) { location.assign("/login"); return; }
      setTimeout(connect, 1000);
    }
  };
}

// --- keyboard: the selected referral, the queue ---------------------------------------

function onKey(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.target.closest("input, textarea, select")) return;
  const key = ev.key.toLowerCase();
  if (key === "n") { // the oldest waiting referral
    const [first] = referralQueue();
    if (first) select(first.gate);
  } else if (key === "escape") {
    select(null);
  } else if (key === "m") {
    alerts.toggleMute();
  } else {
    const b = document.querySelector(`#detail button[data-key="${CSS.escape(key)}"]`);
    if (b && !b.disabled) { ev.preventDefault(); b.click(); }
  }
}

async function main() {
  const r = await fetch("/api/me", { credentials: "same-origin" });
  if (r.status === 401) { location.assign("/login"); return; }
  me = await r.json();
  document.getElementById("site").textContent = me.site;
  document.getElementById("officer").textContent = `${me.officer} (${me.role})`;
  alerts.init(me.officer, document.getElementById("mute"), (gate) => {
    const c = document.querySelector(`#hall [data-gate="${CSS.escape(gate)}"]`);
    if (c) c.classList.toggle("flash", alerts.flashing(gate));
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": me.csrf } });
    location.assign("/login");
  });
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", fitHall);
  // waiting times tick in place (re-rendering would swallow a click in progress)
  setInterval(() => {
    for (const w of document.querySelectorAll("[data-since]")) w.textContent = waited(w.dataset.since);
  }, 1000);
  connect();
}

main();
