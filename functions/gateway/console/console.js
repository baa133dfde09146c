// The Governor's console: every action is a call to the gateway's JSON API with the user's
// bearer token, so the platform's policies decide what this page may show and do. Updates
// come by polling (see docs/console.md), only while the tab is visible.
"use strict";

const TOKEN_KEY = "waooaw.console.token"; // sessionStorage: gone when the tab closes
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

let config = { dev_token_url: "" };
let timer = 0;
let page = "";
let current = null; // the request the timeline shows: {id, stream, after, entries, lastSeq, settledSeq, verifiedSeq}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

// claims reads the token's payload to say who is signed in; the gateway, not this, checks it.
function claims(tok) {
  try {
    const b64 = tok.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(b64 + "===".slice((b64.length + 3) % 4)));
  } catch (e) {
    return null;
  }
}

// ApiError carries the API's own words: {"error": {"code", "message"}}.
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const init = { method, headers: { Authorization: "Bearer " + token() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "the gateway did not answer (" + e.message + ")");
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) {
    const msg = data && data.error && data.error.message ? data.error.message : resp.statusText;
    throw new ApiError(resp.status, msg);
  }
  return { status: resp.status, data };
}

function notice(text, kind) {
  const n = $("notice");
  n.textContent = text || "";
  n.className = kind || "";
  n.hidden = !text;
}

function errorText(e) {
  return e instanceof ApiError && e.status ? e.status + ": " + e.message : e.message;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// ---- sign-in

function showWho() {
  const c = claims(token());
  const signed = !!c;
  $("nav").hidden = !signed;
  $("who").hidden = !signed;
  if (c) {
    $("who-text").textContent = c.sub + " · " + c.role + (c.engagement ? " · " + c.engagement : "");
  }
}

function signIn(tok) {
  tok = tok.trim();
  if (!claims(tok)) {
    notice("That is not a token (three dot-separated parts, the middle one JSON).");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, tok);
  notice("");
  showWho();
  if (location.hash === "#approvals") route(); else location.hash = "#approvals";
}

async function devSignIn() {
  const body = { role: $("dev-role").value, subject: $("dev-subject").value.trim(), engagement: $("dev-engagement").value.trim() };
  try {
    const resp = await fetch(config.dev_token_url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await resp.json();
    if (!resp.ok) throw new ApiError(resp.status, data && data.error ? data.error.message : resp.statusText);
    signIn(data.token);
  } catch (e) {
    notice("Development sign-in failed: " + errorText(e));
  }
}

// ---- pages

function route() {
  clearTimeout(timer);
  const hash = location.hash.replace(/^#/, "");
  let [name, arg] = hash.split("/");
  if (!token()) name = "signin";
  else if (!["approvals", "vetoes", "request"].includes(name)) name = "approvals";
  page = name;
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "page-" + name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.id === "nav-" + name);
  notice("");
  if (name === "signin") {
    $("dev-form").hidden = !config.dev_token_url;
    return;
  }
  if (name === "request") {
    $("request-id").value = arg ? decodeURIComponent(arg) : "";
    current = null;
    $("request-view").hidden = true;
    if (arg) openRequest(decodeURIComponent(arg));
    return;
  }
  poll();
}

function schedule(fn) {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (document.hidden) schedule(fn); else fn();
  }, POLL_MS);
}

async function poll() {
  const want = page;
  try {
    const { data } = await api("GET", "/v1/approvals?state=pending");
    if (page !== want) return;
    renderApprovals(data.approvals || []);
    if (!$("notice").classList.contains("keep")) notice("");
  } catch (e) {
    if (page !== want) return;
    notice(errorText(e));
  }
  if (page === want) schedule(poll);
}

// renderApprovals keeps cards that are still pending (so a reason being typed survives a
// refresh), adds new ones and drops those no longer listed.
function renderApprovals(list) {
  const veto = page === "vetoes";
  const ul = $(veto ? "vetoes-list" : "approvals-list");
  const want = list.filter((a) => (a.kind === "veto_window") === veto);
  const ids = new Set(want.map((a) => a.approval_id));
  // A card being decided, or decided a moment ago, stays to show the answer.
  for (const li of [...ul.children]) {
    if (!ids.has(li.dataset.id) && !(Number(li.dataset.keepUntil) > Date.now())) li.remove();
  }
  const byId = new Map(want.map((a) => [a.approval_id, a]));
  for (const li of ul.children) if (byId.has(li.dataset.id)) showAcknowledge(li, byId.get(li.dataset.id));
  const have = new Set([...ul.children].map((li) => li.dataset.id));
  for (const a of want) if (!have.has(a.approval_id)) ul.appendChild(card(a, veto));
  $(veto ? "vetoes-empty" : "approvals-empty").hidden = want.length > 0;
  $(veto ? "vetoes-updated" : "approvals-updated").textContent = "updated " + new Date().toLocaleTimeString();
  tick();
}

function card(a, veto) {
  const li = document.getElementById("approval-card").content.firstElementChild.cloneNode(true);
  li.dataset.id = a.approval_id;
  li.dataset.request = a.request_id;
  li.querySelector(".type").textContent = a.type + (veto ? " · veto window" : " · blocking");
  const link = li.querySelector(".request");
  link.textContent = a.request_id;
  link.href = "#request/" + encodeURIComponent(a.request_id);
  li.querySelector(".asked").textContent = veto
    ? "Auto-approved by seed " + (a.seed_id || "?") + " at stage " + a.stage + "; it stands unless vetoed before the deadline."
    : "Stage " + a.stage + " asks the Governor to approve or deny the " + a.type + ".";
  const reasons = li.querySelector(".reasons");
  for (const r of a.reasons || []) reasons.appendChild(el("li", r));
  const dl = li.querySelector(".deadline");
  dl.dateTime = a.deadline;
  dl.textContent = new Date(a.deadline).toLocaleString();
  li.querySelector(".countdown").dataset.deadline = a.deadline;
  li.querySelector(".approve").hidden = veto;
  li.querySelector(".deny").hidden = veto;
  li.querySelector(".veto").hidden = !veto;
  li.querySelector(".approve").addEventListener("click", () => decide(li, "approve"));
  li.querySelector(".deny").addEventListener("click", () => decide(li, "deny"));
  li.querySelector(".veto").addEventListener("click", () => askVeto(li));
  li.querySelector(".acknowledge").addEventListener("click", () => acknowledge(li));
  showAcknowledge(li, a);
  li.querySelector(".confirm-no").addEventListener("click", () => { li.querySelector(".confirm").hidden = true; });
  li.querySelector(".confirm-yes").addEventListener("click", () => decide(li, "veto"));
  return li;
}

// showAcknowledge offers Acknowledge only when the route would take it: the approval's
// reminders are running and the signed-in user is a Governor (the policies decide the rest).
function showAcknowledge(li, a) {
  const c = claims(token());
  const btn = li.querySelector(".acknowledge");
  if (li.dataset.acknowledging) return;
  btn.hidden = !(a.acknowledge && c && c.role === "governor");
  if (a.acknowledged_by) li.querySelector(".ack-state").textContent = "Reminders stopped by " + a.acknowledged_by;
}

// acknowledge stops the approval's reminders; it decides nothing.
async function acknowledge(li) {
  const btn = li.querySelector(".acknowledge");
  const out = li.querySelector(".ack-state");
  btn.disabled = true;
  li.dataset.acknowledging = "1";
  out.textContent = "Acknowledging…";
  out.className = "ack-state";
  try {
    const { data } = await api("POST", "/v1/approvals/" + encodeURIComponent(li.dataset.id) + "/acknowledge");
    out.textContent = "Acknowledged by " + data.acknowledged_by + ": " + (data.status === "ended" ? "every reminder had been sent" : "no more reminders");
    out.className = "ack-state done";
    btn.hidden = true;
  } catch (e) {
    out.textContent = errorText(e);
    out.className = "ack-state bad";
    btn.disabled = false;
    delete li.dataset.acknowledging;
  }
}

function askVeto(li) {
  const reason = li.querySelector(".reason").value.trim();
  const out = li.querySelector(".result");
  if (!reason) {
    out.textContent = "A veto needs a reason.";
    out.className = "result bad";
    li.querySelector(".reason").focus();
    return;
  }
  out.textContent = "";
  li.querySelector(".confirm-text").textContent = "Veto " + li.dataset.request + " and undo it?";
  li.querySelector(".confirm").hidden = false;
}

async function decide(li, decision) {
  const out = li.querySelector(".result");
  const reason = li.querySelector(".reason").value.trim();
  const buttons = li.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  li.dataset.keepUntil = String(Number.MAX_SAFE_INTEGER);
  out.textContent = "Sending " + decision + "…";
  out.className = "result";
  try {
    const { status, data } = await api("POST", "/v1/approvals/" + encodeURIComponent(li.dataset.id) + ":decide", { decision, reason });
    out.textContent = status === 202 ? decision + " delivered; the workflow has not closed the approval yet" : decision + " recorded by " + data.decided_by;
    out.className = "result done";
    li.dataset.keepUntil = String(Date.now() + 5000);
    li.querySelector(".confirm").hidden = true;
    if (decision === "veto") {
      // The undo steps appear on the request's timeline as they complete.
      location.hash = "#request/" + encodeURIComponent(li.dataset.request);
    }
  } catch (e) {
    out.textContent = errorText(e);
    out.className = "result bad";
    li.dataset.keepUntil = "0";
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// tick refreshes every countdown once a second.
function tick() {
  const now = Date.now();
  for (const c of document.querySelectorAll(".countdown[data-deadline]")) {
    const left = Math.floor((Date.parse(c.dataset.deadline) - now) / 1000);
    if (left <= 0) {
      c.textContent = "deadline passed";
      c.classList.add("soon");
      continue;
    }
    const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    c.textContent = (h ? h + "h " : "") + String(m).padStart(2, "0") + "m " + String(s).padStart(2, "0") + "s left";
    c.classList.toggle("soon", left < 3600);
  }
}

// ---- timeline

async function openRequest(id) {
  current = { id, stream: "", after: 0, entries: [], lastSeq: -1, settledSeq: -1, verifiedSeq: -1, chain: null };
  $("entries").tBodies[0].replaceChildren();
  $("chain").textContent = "";
  $("entries-note").textContent = "";
  await refreshRequest(current);
}

async function refreshRequest(cur) {
  if (current !== cur || page !== "request") return;
  try {
    const { data } = await api("GET", "/v1/agent-requests/" + encodeURIComponent(cur.id));
    if (current !== cur) return;
    renderRequest(data);
    cur.stream = data.engagement_id;
    notice("");
  } catch (e) {
    if (current !== cur) return;
    $("request-view").hidden = true;
    notice(errorText(e));
    schedule(() => refreshRequest(cur));
    return;
  }
  await refreshEntries(cur);
  if (current === cur && page === "request") schedule(() => refreshRequest(cur));
}

function renderRequest(r) {
  $("request-view").hidden = false;
  $("request-summary").textContent = r.request_id + " · engagement " + r.engagement_id + " · " + r.status +
    (r.agent_id ? " · agent " + r.agent_id : "") + (r.reason ? " · " + r.reason : "");
  const stages = $("stages");
  stages.replaceChildren();
  for (const s of r.stages || []) {
    const li = el("li");
    li.dataset.stage = s.stage;
    li.append(el("span", "Stage " + s.stage + " " + s.name + " (round " + s.round + "): "), el("span", s.outcome, "outcome"),
      el("span", " · " + s.at));
    if (s.reasons && s.reasons.length) {
      const ul = el("ul");
      for (const x of s.reasons) ul.appendChild(el("li", x));
      li.appendChild(ul);
    }
    stages.appendChild(li);
  }
  const a = r.approval;
  $("approval").textContent = a ? a.type + " " + a.kind + " " + a.approval_id + ": " + a.state +
    (a.seed_id ? " · seed " + a.seed_id : "") + " · deadline " + a.deadline : "none";
  const comps = $("compensations");
  comps.replaceChildren();
  for (const c of r.compensations || []) {
    const li = el("li", "undo stage " + c.stage + " · " + c.at);
    li.dataset.stage = c.stage;
    comps.appendChild(li);
  }
  if (!(r.compensations || []).length) comps.appendChild(el("li", "none", "none"));
}

// refreshEntries reads what the stream gained since the last page, shows this request's
// entries, and verifies the chain once the stream has settled (its last seq unchanged for a
// poll): a walk is rationed per caller, so it is not spent on every append.
async function refreshEntries(cur) {
  if (!cur.stream) return;
  try {
    for (;;) {
      const { data } = await api("GET", "/v1/audit/streams/" + encodeURIComponent(cur.stream) + "/entries?limit=1000&after=" + cur.after);
      if (current !== cur) return;
      for (const e of data.entries) {
        if ((e.context && e.context.request_id === cur.id) || (e.target || "").includes(cur.id)) addEntry(e);
      }
      const more = data.next_after !== cur.after && data.entries.length === 1000;
      cur.after = data.next_after;
      if (!more) break;
    }
  } catch (e) {
    $("entries-note").textContent = "Audit entries: " + errorText(e);
    $("chain").textContent = "";
    return;
  }
  $("entries-note").textContent = current.entries.length + " entries of stream " + cur.stream + " name this request.";
  const seq = cur.after;
  const settled = seq === cur.lastSeq;
  cur.lastSeq = seq;
  if (settled && seq !== cur.verifiedSeq) await verify(cur, seq);
  else if (cur.verifiedSeq < 0 && !cur.chain) $("chain").textContent = "verifying once the stream settles…";
}

function addEntry(e) {
  current.entries.push(e);
  const tr = el("tr");
  tr.dataset.action = e.action;
  for (const v of [e.seq, e.time, e.action, e.result, e.actor_type + ":" + e.actor_id]) tr.appendChild(el("td", String(v)));
  $("entries").tBodies[0].appendChild(tr);
}

async function verify(cur, seq) {
  const chain = $("chain");
  try {
    const { data } = await api("GET", "/v1/audit/streams/" + encodeURIComponent(cur.stream) + "/verify");
    if (current !== cur) return;
    cur.verifiedSeq = seq;
    cur.chain = data;
    if (data.ok) {
      chain.textContent = "chain verified to seq " + data.entries;
      chain.className = "chain ok";
    } else {
      chain.textContent = "chain broken: first bad link at seq " + data.first_bad_seq;
      chain.className = "chain bad";
    }
  } catch (e) {
    chain.textContent = "chain not verified: " + errorText(e);
    chain.className = "chain bad";
  }
}

// ---- start

async function start() {
  try {
    const resp = await fetch("config.json");
    if (resp.ok) config = await resp.json();
  } catch (e) {
    config = { dev_token_url: "" };
  }
  $("token-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token-input").value); });
  $("dev-form").addEventListener("submit", (ev) => { ev.preventDefault(); devSignIn(); });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showWho();
    location.hash = "#signin";
    route();
  });
  $("request-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = $("request-id").value.trim();
    if (id) location.hash = "#request/" + encodeURIComponent(id);
  });
  window.addEventListener("hashchange", route);
  setInterval(tick, 1000);
  showWho();
  route();
  document.body.dataset.ready = "true";
}

start();
