// The hall view: one card per gate, a detail panel for the selected gate's referral.
// Live updates arrive as server-sent events; renders are batched per animation frame.

const ACTIONS = [
  ["release", "Release through"],
  ["send_back", "Send back"],
  ["reset_alarm", "Reset alarm"],
  ["out_of_service", "Out of service"],
  ["in_service", "In service"],
];
const LINK_NAMES = ["broker", "barrier", "camera", "reader", "chip"];
const DOC_FIELDS = [
  ["surname", "Surname"], ["given_names", "Given names"], ["document_number", "Document no."],
  ["document_code", "Type"], ["issuing_state", "Issued by"], ["nationality", "Nationality"],
  ["date_of_birth", "Born"], ["sex", "Sex"], ["date_of_expiry", "Expires"],
];

const gates = new Map();
const pending = new Map();
let me = null;
let selected = null;
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

function card(g) {
  const c = el("article", { class: `gate state-${g.state}`, "data-gate": g.gate, tabindex: "0" });
  if (g.gate === selected) c.classList.add("selected");
  if (g.faulty) c.classList.add("faulty");
  c.append(el("h2", { text: g.gate }), el("div", { class: "state", text: g.state.replaceAll("_", " ") }));
  if (g.faulty) {
    c.append(el("div", { class: "fault", text: `FAULTY: bad message on ${g.faulty.leaf}: ${g.faulty.detail}` }));
  }
  const d = g.last_decision;
  c.append(el("div", { class: "decision", text: d ? `last: ${d.decision} ${time(d.ts)}` : "last: none" }));
  c.append(el("div", { class: "crossings", text: `${g.crossings_hour} crossing${g.crossings_hour === 1 ? "" : "s"} this hour` }));
  const links = el("ul", { class: "links" });
  for (const name of LINK_NAMES) {
    const s = (g.links && g.links[name]) || "unknown";
    links.append(el("li", { class: `link link-${s}`, title: `${name}: ${s}`, text: name }));
  }
  c.append(links);
  if (g.alarms.length) {
    const ul = el("ul", { class: "alarms" });
    for (const a of g.alarms) ul.append(el("li", { text: a.text + (a.device ? ` (${a.device})` : "") }));
    c.append(ul);
  }
  if (g.referral) {
    c.append(el("div", { class: "referral-flag", text: "REFERRAL: " + g.referral.reasons.map((r) => r.text).join("; ") }));
  }
  c.addEventListener("click", () => select(g.gate));
  return c;
}

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

function scoreLine(s) {
  const parts = [];
  if (s.match !== undefined) parts.push(`match ${s.match.toFixed(2)}` + (s.match_threshold !== undefined ? ` (threshold ${s.match_threshold.toFixed(2)})` : ""));
  if (s.pad !== undefined) parts.push(`liveness (PAD) ${s.pad.toFixed(2)}`);
  return parts.join(" · ") || "no face scores";
}

function controls(g) {
  const box = el("div", { class: "controls" });
  const actions = el("div", { class: "actions" });
  for (const [cmd, label] of ACTIONS) {
    const b = el("button", { type: "button", id: `cmd-${cmd}`, text: label });
    if (!me.allowed.includes(cmd)) { b.disabled = true; b.title = "supervisor only"; }
    b.addEventListener("click", () => send(g.gate, cmd, g.referral && g.referral.txn_id));
    actions.append(b);
  }
  box.append(actions);
  const log = el("ol", { id: "acks", class: "acks" });
  for (const c of g.commands) {
    const status = c.ack ? (c.ack.accepted ? "accepted" : `refused: ${c.ack.detail}`) : "waiting for the gate…";
    log.append(el("li", { class: c.ack ? (c.ack.accepted ? "ok" : "refused") : "pending", "data-command": c.command,
      text: `${time(c.ts)} ${c.command.replaceAll("_", " ")} by ${c.officer}: ${status}` }));
  }
  box.append(log);
  box.append(el("p", { id: "cmd-result", role: "status" }));
  return box;
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
  aside.append(el("h2", { text: `Gate ${g.gate}: ${g.state.replaceAll("_", " ")}` }));
  if (g.referral) {
    const r = g.referral;
    const sec = el("section", { id: "referral", class: "referral" });
    sec.append(el("h3", { text: `Referral ${r.txn_id} at ${time(r.ts)}` }));
    const reasons = el("ul", { class: "reasons" });
    for (const x of r.reasons) reasons.append(el("li", { "data-code": x.code, text: x.text }));
    sec.append(reasons, controls(g));
    // keep the <img> elements across re-renders: no refetch of the same photos
    sec.append(oldPhotos || el("div", { class: "photos" }, photo(g, "portrait", "Chip portrait"), photo(g, "frame", "Live frame")));
    sec.append(el("p", { id: "scores", class: "scores", text: scoreLine(r.scores) }));
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

async function send(gate, cmd, txn) {
  const out = document.getElementById("cmd-result");
  // a release / send-back names the referral on screen: the gate refuses it for another
  const r = await fetch(`/api/gates/${gate}/cmd/${cmd}`, {
    method: "POST", credentials: "same-origin",
    headers: { "X-CSRF-Token": me.csrf, "Content-Type": "application/json" },
    body: JSON.stringify(txn ? { txn_id: txn } : {}),
  });
  const body = await r.json().catch(() => ({}));
  const now = document.getElementById("cmd-result");
  if (now) now.textContent = r.ok ? `${cmd} sent (${body.command_id})` : `${cmd} refused by the console: ${body.error}`;
  void out;
}

function summary() {
  let refs = 0, alarms = 0, down = 0;
  for (const g of gates.values()) {
    if (g.referral) refs++;
    alarms += g.alarms.length;
    if (g.state === "OFFLINE" || g.faulty) down++;
  }
  document.getElementById("summary").textContent = `${gates.size} gates · ${refs} referrals · ${alarms} alarms · ${down} offline/faulty`;
}

function renderAll() {
  const hall = document.getElementById("hall");
  hall.replaceChildren(...[...gates.values()].sort((a, b) => a.gate.localeCompare(b.gate)).map(card));
  renderDetail();
  summary();
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
  summary();
}

function update(g) {
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
    document.getElementById("broker-banner").hidden = snap.broker;
    banner.hidden = true;
    document.body.dataset.live = "1";
    renderAll();
  });
  es.addEventListener("gate", (ev) => update(JSON.parse(ev.data)));
  es.addEventListener("alert", (ev) => {  // security alarms, sent to supervisors only
    const a = document.getElementById("alert-banner");
    a.textContent = JSON.parse(ev.data).text;
    a.hidden = false;
  });
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

async function main() {
  const r = await fetch("/api/me", { credentials: "same-origin" });
  if (r.status === 401) { location.assign("/login"); return; }
  me = await r.json();
  document.getElementById("site").textContent = me.site;
  document.getElementById("officer").textContent = `${me.officer} (${me.role})`;
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": me.csrf } });
    location.assign("/login");
  });
  connect();
}

main();
