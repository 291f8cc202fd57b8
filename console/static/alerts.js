// A new referral or alarm is heard and seen: a short tone and a flashing card (and a
// flash of the top bar). Sound is muted per officer, remembered in this browser.
// Each alert is also recorded in window.__alerts (what the browser tests read).

const FLASH_MS = 5000;
const flashes = new Map(); // gate -> flashing until (ms)
let muted = false;
let storageKey = "";
let button = null;
let onFlashEnd = () => {};
let ctx = null;
window.__alerts = [];

function tone(kind) {
  try {
    ctx = ctx || new AudioContext();
    if (ctx.state === "suspended") ctx.resume();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = kind === "alarm" ? 880 : 660;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + (kind === "alarm" ? 0.6 : 0.25));
    return ctx.state;
  } catch (err) {
    return `unavailable: ${err}`;
  }
}

function showMute() {
  if (!button) return;
  button.textContent = muted ? "Sound off [M]" : "Sound on [M]";
  button.setAttribute("aria-pressed", String(muted));
  button.classList.toggle("muted", muted);
}

function fire(gate, kind) {
  const audio = muted ? "muted" : tone(kind);
  window.__alerts.push({ gate, kind, sound: !muted, audio, at: Date.now() });
  flashes.set(gate, Date.now() + FLASH_MS);
  document.body.classList.add("alert-flash");
  setTimeout(() => {
    document.body.classList.remove("alert-flash");
    onFlashEnd(gate);
  }, FLASH_MS);
}

export const alerts = {
  init(officer, muteButton, flashEnded) {
    storageKey = `autogate.mute.${officer}`;
    muted = localStorage.getItem(storageKey) === "1";
    button = muteButton;
    onFlashEnd = flashEnded;
    button.addEventListener("click", () => alerts.toggleMute());
    showMute();
  },

  toggleMute() {
    muted = !muted;
    localStorage.setItem(storageKey, muted ? "1" : "0");
    showMute();
  },

  flashing(gate) {
    return (flashes.get(gate) || 0) > Date.now();
  },

  // called with a gate's previous and new view; the first sight of a gate (the page's
  // snapshot on load) never alerts: what was already open is in the queue
  compare(old, g) {
    if (!old) return;
    const newReferral = g.referral && (!old.referral || old.referral.txn_id !== g.referral.txn_id);
    const had = new Set(old.alarms.map((a) => `${a.code}:${a.device}`));
    const newAlarm = g.alarms.some((a) => !had.has(`${a.code}:${a.device}`));
    const emergency = g.condition === "emergency" && old.condition !== "emergency";
    if (newAlarm || emergency) fire(g.gate, "alarm");
    else if (newReferral) fire(g.gate, "referral");
  },
};
