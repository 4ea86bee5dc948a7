// ordo console: polls the JSON API and renders it. No framework, no build.
"use strict";

const OVERVIEW_EVERY = 2000;
const LETTERS_EVERY = 5000;
const PAGE = 50;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("ordo-console-token") || "";
let filter = {};
let offset = 0;
let total = 0;
let timers = [];

// A token in the URL's fragment (never sent to the server) is taken once.
const m = location.hash.match(/token=([^&]+)/);
if (m) {
  token = decodeURIComponent(m[1]);
  sessionStorage.setItem("ordo-console-token", token);
  history.replaceState(null, "", location.pathname + location.search);
}

class HTTPError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

async function api(path, body) {
  const opts = { headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (res.status === 401) { showLogin("The token was refused."); throw new HTTPError(401, "unauthorized"); }
  if (!res.ok) throw new HTTPError(res.status, (data && data.error) || res.statusText);
  return data;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

const td = (field, text, cls) => el("td", { "data-field": field, class: cls || "" }, text);
const num = (field, n) => td(field, n < 0 ? "–" : n.toLocaleString("en-US"), "n");
const pill = (text) => el("span", { class: "pill " + text }, text);

function duration(secs) {
  if (secs == null || secs < 0) return "–";
  if (secs === 0) return "0s";
  if (secs < 1) return Math.round(secs * 1000) + "ms";
  if (secs < 60) return secs.toFixed(1) + "s";
  if (secs < 3600) return Math.floor(secs / 60) + "m" + Math.round(secs % 60) + "s";
  if (secs < 86400) return Math.floor(secs / 3600) + "h" + Math.round((secs % 3600) / 60) + "m";
  return Math.floor(secs / 86400) + "d" + Math.round((secs % 86400) / 3600) + "h";
}

function time(s) {
  const d = new Date(s);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function showError(msg) {
  $("error").hidden = !msg;
  $("error").textContent = msg || "";
}

function showLogin(msg) {
  stop();
  $("main").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = msg || "";
  $("token").focus();
}

function stop() { timers.forEach(clearInterval); timers = []; }

function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  stop();
  refreshOverview();
  refreshLetters();
  timers.push(setInterval(refreshOverview, OVERVIEW_EVERY), setInterval(refreshLetters, LETTERS_EVERY));
}

async function refreshOverview() {
  let o;
  try { o = await api("/api/overview"); } catch (e) {
    if (e.status !== 401) showError("Cannot read the cluster: " + e.message);
    return;
  }
  const bad = o.nodes.filter((n) => n.error);
  showError(bad.map((n) => `node ${n.name} unreachable: ${n.error}`).join("\n"));
  renderOverview(o);
}

function renderOverview(o) {
  const pending = o.nodes.reduce((s, n) => s + Math.max(0, n.pending), 0);
  const dead = o.nodes.reduce((s, n) => s + Math.max(0, n.deadLetters), 0);
  const live = o.workers.filter((w) => w.live).length;
  $("summary").textContent = `${o.shardCount} shards on ${o.nodes.filter((n) => n.state !== "detached").length} nodes · ${pending.toLocaleString("en-US")} pending · ${dead.toLocaleString("en-US")} dead letters · ${live} live workers`;
  $("updated").textContent = "updated " + new Date(o.at).toLocaleTimeString();

  $("nodes").replaceChildren(...o.nodes.map((n) => el("tr", { "data-node": n.name },
    td("name", n.name), el("td", { "data-field": "state" }, pill(n.error ? "unreachable" : n.state)),
    num("shards", n.shards), num("pending", n.pending), td("lag", duration(n.maxLagSeconds), "n"),
    el("td", { "data-field": "deadLetters", class: "n" + (n.deadLetters > 0 ? " hot" : "") }, n.deadLetters < 0 ? "–" : n.deadLetters.toLocaleString("en-US")),
    td("url", n.url, "muted"))));

  if (o.moves.length === 0) {
    $("moves").replaceChildren(el("p", { class: "muted", "data-testid": "no-moves" }, "none"));
  } else {
    $("moves").replaceChildren(...o.moves.map((mv) => el("div", { class: "move", "data-move": mv.id },
      el("span", {}, `shard ${mv.shard}: ${mv.source} → ${mv.target} `, pill(mv.state)),
      el("progress", { max: mv.stepsTotal, value: mv.stepsDone, title: `${mv.stepsDone}/${mv.stepsTotal} steps` }),
      el("span", { class: "muted" }, `${mv.step} · ${mv.rowsCopied.toLocaleString("en-US")} rows copied` + (mv.error ? " · " + mv.error.split("\n")[0] : "")))));
  }

  $("workers").replaceChildren(...(o.workers.length ? o.workers.map((w) => el("tr", { "data-worker": w.id },
    td("id", w.id), el("td", { "data-field": "live" }, pill(w.live ? "yes" : "no")),
    td("heartbeat", duration(w.heartbeatAgeSeconds) + " ago"), num("shards", w.shards.length),
    td("holds", w.shards.join(", "), "muted"))) : [el("tr", {}, el("td", { colSpan: 5, class: "muted" }, "no worker has a heartbeat"))]));

  $("shards").replaceChildren(...o.shards.map((s) => el("tr", { "data-shard": s.shard },
    num("shard", s.shard), td("node", s.node), el("td", { "data-field": "state" }, pill(s.state)), num("epoch", s.epoch),
    num("pending", s.pending), td("lag", duration(s.lagSeconds), "n"),
    el("td", { "data-field": "deadLetters", class: "n" + (s.deadLetters > 0 ? " hot" : "") }, s.deadLetters < 0 ? "–" : s.deadLetters),
    td("holder", s.holder || "–", s.holder ? "" : "muted"))));
  document.body.dataset.overviewAt = o.at;
}

function query(extra) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...filter, ...extra })) if (v !== "" && v != null) p.set(k, v);
  return p.toString();
}

async function refreshLetters() {
  let l;
  try { l = await api("/api/dead-letters?" + query({ limit: PAGE, offset })); } catch (e) {
    if (e.status !== 401) $("dl-error").textContent = e.message;
    return;
  }
  const bad = l.nodes.filter((n) => n.error);
  $("dl-error").textContent = bad.length ? `Left out, unreachable: ${bad.map((n) => n.node).join(", ")}` : "";
  total = l.total;
  $("dl-total").textContent = `${l.total.toLocaleString("en-US")} matching`;
  const rows = [];
  for (const d of l.letters) {
    const one = { "message-id": d.messageId, destination: d.destination };
    const detail = el("tr", { class: "detail", hidden: true },
      el("td", { colSpan: 11 }, `reason: ${d.reason}\nlast response (${d.lastStatus == null ? "no response" : "status " + d.lastStatus}):\n${d.lastResponse || "(empty)"}\n\nevent:\n${JSON.stringify(d.event, null, 2)}`));
    const row = el("tr", { class: "letter", "data-message-id": d.messageId, "data-node": d.node },
      td("failedAt", time(d.failedAt)), td("node", d.node), num("shard", d.shard), td("destination", d.destination),
      td("key", d.orderingKey), td("messageId", d.messageId, "muted"), num("attempts", d.attempts),
      td("status", d.lastStatus == null ? "none" : d.lastStatus), td("reason", d.reason, "clip"), td("response", d.lastResponse, "clip muted"),
      el("td", {},
        el("button", { class: "small", "data-testid": "replay", onclick: (ev) => { ev.stopPropagation(); confirmChange("replay", one, `dead letter ${d.messageId}`); } }, "Replay"), " ",
        el("button", { class: "small danger", "data-testid": "purge", onclick: (ev) => { ev.stopPropagation(); confirmChange("purge", one, `dead letter ${d.messageId}`); } }, "Purge")));
    row.addEventListener("click", () => { detail.hidden = !detail.hidden; });
    rows.push(row, detail);
  }
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colSpan: 11, class: "muted", "data-testid": "no-letters" }, "no dead letters match")));
  $("dead-letters").replaceChildren(...rows);
  $("page").textContent = l.total ? `${offset + 1}–${offset + l.letters.length} of ${l.total}` : "";
  $("prev").disabled = offset === 0;
  $("next").disabled = offset + PAGE >= l.total;
  document.body.dataset.lettersAt = String(Date.now());
}

function describe(f) {
  const parts = Object.entries(f).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`);
  return parts.length ? "matching " + parts.join(", ") : "all dead letters";
}

async function confirmChange(action, f, what) {
  let plan;
  try { plan = await api(`/api/dead-letters/${action}`, { filter: f, dryRun: true }); } catch (e) { toast(`${action}: ${e.message}`); return; }
  const perNode = plan.nodes.filter((n) => n.done > 0).map((n) => `${n.node}: ${n.done}`).join(", ");
  const left = plan.nodes.flatMap((n) => (n.left || []).map((l) => `${n.node}: ${l.count} left (${l.why})`));
  const failed = plan.nodes.filter((n) => n.error).map((n) => `${n.node}: ${n.error}`);
  if (plan.done === 0) { toast(`Nothing to ${action}.` + (left.length || failed.length ? "\n" + [...left, ...failed].join("\n") : "")); return; }
  $("confirm-title").textContent = action === "replay" ? "Replay dead letters" : "Purge dead letters";
  $("confirm-text").textContent = (action === "replay"
    ? `Replay ${plan.done} dead letter(s) (${perNode}), ${what || describe(f)}? Workers deliver them again with the same messageId, in order per key, behind pending events.`
    : `Delete ${plan.done} dead letter(s) (${perNode}), ${what || describe(f)}? This cannot be undone.`)
    + (left.length || failed.length ? "\n\nNot included:\n" + [...left, ...failed].join("\n") : "");
  $("confirm-ok").className = action === "purge" ? "danger" : "";
  $("confirm-ok").textContent = action === "replay" ? "Replay" : "Purge";
  const dlg = $("confirm");
  dlg.returnValue = "";
  dlg.showModal();
  dlg.addEventListener("close", async () => {
    if (dlg.returnValue !== "ok") return;
    try {
      const o = await api(`/api/dead-letters/${action}`, { filter: f, dryRun: false });
      const lines = o.nodes.filter((n) => n.error || n.done > 0 || (n.left || []).length).map((n) => n.error ? `${n.node}: nothing changed: ${n.error}` : `${n.node}: ${action === "replay" ? "replayed" : "purged"} ${n.done}` + ((n.left || []).length ? `, left ${(n.left || []).reduce((s, l) => s + l.count, 0)}` : ""));
      toast(`${action === "replay" ? "Replayed" : "Purged"} ${o.done} dead letter(s).\n` + lines.join("\n"));
    } catch (e) { toast(`${action} failed: ${e.message}`); }
    refreshLetters();
    refreshOverview();
  }, { once: true });
}

let toastTimer;
function toast(msg) {
  $("toast").textContent = msg;
  $("toast").hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $("toast").hidden = true; }, 8000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("ordo-console-token", token);
    start();
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem("ordo-console-token"); token = ""; showLogin(""); });
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    filter = Object.fromEntries(new FormData($("filters")).entries());
    offset = 0;
    refreshLetters();
  });
  $("clear").addEventListener("click", () => { $("filters").reset(); filter = {}; offset = 0; refreshLetters(); });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); refreshLetters(); });
  $("next").addEventListener("click", () => { if (offset + PAGE < total) { offset += PAGE; refreshLetters(); } });
  $("replay-all").addEventListener("click", () => confirmChange("replay", { ...filter }));
  $("purge-all").addEventListener("click", () => confirmChange("purge", { ...filter }));
  if (token) start(); else showLogin("");
});
