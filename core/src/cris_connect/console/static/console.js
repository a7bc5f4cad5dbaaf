// cris-connect console: live status by long polling /api/status, the CRIS Reporting simulator
// (the browser's own WebSocket to the bridge) and the send panel. No libraries, no build step.
// Everything received is written with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const clock = (seconds) => new Date(seconds * 1000).toLocaleTimeString();

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function duration(seconds) {
  seconds = Math.floor(seconds);
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24;
  const m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + s + "s";
}

// ---- status ---------------------------------------------------------------------------------

let status = null;
let uptimeBase = null; // [uptime_s at fetch, performance.now() at fetch]

function setLink(state, text) {
  const link = $("link");
  link.className = "badge " + state;
  link.textContent = text;
  link.dataset.state = state;
}

function renderPlugins(plugins) {
  const body = $("plugins").tBodies[0];
  body.replaceChildren();
  for (const plugin of plugins) {
    const row = body.insertRow();
    row.dataset.plugin = plugin.name;
    cell(row, plugin.name);
    cell(row, plugin.health, plugin.health === "ok" ? "health-ok" : "health-bad");
    cell(row, plugin.delivered);
    cell(row, plugin.queued);
    cell(row, plugin.failures + (plugin.overflowed ? " (+" + plugin.overflowed + " missed)" : ""));
    cell(row, plugin.hooks.join(", "), "hooks");
  }
  if (!plugins.length) cell(body.insertRow(), "no plugins enabled", "hint").colSpan = 6;
}

function renderSessions(sessions) {
  const body = $("sessions").tBodies[0];
  body.replaceChildren();
  for (const session of sessions) {
    const c = session.context;
    const row = body.insertRow();
    row.dataset.session = session.id;
    cell(row, session.id);
    cell(row, session.peer + (session.secure ? "" : " (insecure)"));
    cell(row, session.origin || "(no Origin: not a browser)");
    cell(row, c.logged_in ? "yes" : "no");
    cell(row, c.report_open ? c.accession.join(", ") + (c.read_only ? " (read-only)" : "") : "–");
    cell(row, c.exam_code || "");
    cell(row, [c.nhs, c.chi].filter(Boolean).join(" / "));
    cell(row, clock(session.opened_at));
  }
  $("session-count").textContent = sessions.length;
  $("no-sessions").hidden = sessions.length > 0;
}

function renderCommands(commands, counts) {
  const body = $("commands").tBodies[0];
  body.replaceChildren();
  for (const entry of commands.slice().reverse()) { // newest first
    const row = body.insertRow();
    row.className = "dir-" + entry.direction;
    row.dataset.command = entry.command;
    row.dataset.direction = entry.direction;
    cell(row, clock(entry.at));
    cell(row, { in: "CRIS → PACS", out: "PACS → CRIS", refused: "refused" }[entry.direction]);
    cell(row, entry.sessions.join(", "));
    cell(row, entry.summary);
  }
  const parts = [];
  for (const [direction, byCommand] of Object.entries(counts)) {
    const total = Object.values(byCommand).reduce((a, b) => a + b, 0);
    parts.push(direction + ": " + total);
  }
  $("counts").textContent = parts.length ? "(" + parts.join(", ") + " since start)" : "";
}

function render(s) {
  status = s;
  uptimeBase = [s.uptime_s, performance.now()];
  $("version").textContent = s.version;
  $("listening").textContent = s.listening.url;
  const cert = s.listening.certificate;
  $("tls").textContent = s.listening.tls
    ? "(TLS" + (cert ? ", certificate " + cert.state + ", " + cert.days_left + " days left" : "") + ")"
    : "(plain ws://, no TLS)";
  renderPlugins(s.plugins);
  renderSessions(s.sessions);
  renderCommands(s.commands, s.counts);
  $("simulator").hidden = !s.console.simulator;
  $("send-panel").hidden = !s.console.send_panel;
  document.body.classList.toggle("wide", !s.console.simulator && !s.console.send_panel);
  document.body.dataset.seq = s.seq;
  tickUptime();
}

function tickUptime() {
  if (uptimeBase) $("uptime").textContent = duration(uptimeBase[0] + (performance.now() - uptimeBase[1]) / 1000);
}

async function pollStatus() {
  let after = -1;
  for (;;) {
    try {
      const response = await fetch("/api/status?after=" + after, { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const s = await response.json();
      after = s.seq;
      render(s);
      setLink("ok", "live");
      await sleep(100); // coalesce bursts of commands into one redraw
    } catch (error) {
      setLink("bad", "bridge unreachable (" + error.message + ")");
      await sleep(2000);
    }
  }
}

// ---- simulator: this page as CRIS Reporting -----------------------------------------------------

let socket = null;

function accessions(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

function withPatient(message) {
  const exam = $("sim-exam").value.trim(), nhs = $("sim-nhs").value.trim(), chi = $("sim-chi").value.trim();
  if (exam) message.examCode = exam;
  if (nhs) message.nhs = nhs;
  if (chi) message.chi = chi;
  return message;
}

function shown(message) {
  // The simulator may receive a LOGIN with a password: never put it on the screen.
  const copy = Object.assign({}, message);
  if ("password" in copy) copy.password = "***";
  return JSON.stringify(copy);
}

function logMessage(listId, message) {
  const item = document.createElement("li");
  item.dataset.command = String(message.command || "");
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit",
                                                         hour12: false });
  item.append(time, document.createTextNode(shown(message)));
  const list = $(listId);
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

function setSimState(state, text) {
  const badge = $("sim-state");
  badge.dataset.state = state;
  badge.className = "badge " + ({ open: "ok", connecting: "wait", error: "bad" }[state] || "off");
  badge.textContent = text;
  const open = state === "open";
  for (const id of ["sim-login", "sim-open", "sim-select", "sim-historic-open", "sim-save", "sim-skip", "sim-logout",
                    "sim-disconnect"]) {
    $(id).disabled = !open;
  }
  $("sim-connect").disabled = open || state === "connecting";
}

function simSend(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify(message));
  logMessage("sim-outgoing", message);
}

function simReceived(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch (error) {
    message = { command: "(not JSON)", text: String(event.data).slice(0, 200) };
  }
  logMessage("sim-incoming", message);
  // React as CRIS Reporting does.
  const screen = $("sim-screen");
  if (message.command === "DISPLAY" && Array.isArray(message.accession)) {
    $("sim-accession").value = message.accession.join(", ");
    screen.textContent = "showing report " + message.accession.join(", ");
  } else if (message.command === "CLEAR") {
    screen.textContent = "worklist";
  } else if (message.command === "LOGOUT") {
    screen.textContent = "logged out";
  } else if (message.command === "LOGIN") {
    screen.textContent = "logged in as " + (message.username || "?");
  }
}

function simConnect() {
  if (!status) return;
  setSimState("connecting", "connecting…");
  const ws = new WebSocket(status.console.bridge_url);
  socket = ws;
  ws.onopen = () => setSimState("open", "connected to " + status.console.bridge_url);
  ws.onmessage = simReceived;
  ws.onerror = () => setSimState("error", "connection failed (is the certificate trusted?)");
  ws.onclose = (event) => {
    if (socket === ws) socket = null;
    setSimState(event.code === 1000 || event.code === 1001 ? "closed" : "error",
                "closed (code " + event.code + (event.reason ? ", " + event.reason : "") + ")");
  };
}

function setUpSimulator() {
  $("sim-connect").onclick = simConnect;
  $("sim-disconnect").onclick = () => socket && socket.close(1000, "simulator disconnected");
  $("sim-login").onclick = () => simSend({ command: "LOGIN" });
  $("sim-open").onclick = () =>
    simSend(withPatient({ command: "EVENT", accession: accessions($("sim-accession").value) }));
  $("sim-select").onclick = () =>
    simSend(withPatient({ command: "EVENT", accession: accessions($("sim-accession").value).slice(0, 1) }));
  $("sim-historic-open").onclick = () =>
    simSend(withPatient({ command: "READONLY", accession: accessions($("sim-historic").value) }));
  $("sim-save").onclick = () => {
    const accession = accessions($("sim-accession").value);
    simSend({ command: "COMMIT", accession: accession });
    simSend({ command: "RELEASE", accession: accession });
  };
  $("sim-skip").onclick = () => simSend({ command: "RELEASE", accession: accessions($("sim-accession").value) });
  $("sim-logout").onclick = () => simSend({ command: "LOGOUT" });
  setSimState("closed", "not connected");
}

// ---- send panel ----------------------------------------------------------------------------------

async function sendToCris(message) {
  const result = $("send-result");
  result.textContent = "sending…";
  result.dataset.state = "sending";
  try {
    const response = await fetch("/api/send", {
      method: "POST",
      headers: { "Content-Type": "application/json",
                 "X-Console-Token": document.querySelector('meta[name="console-token"]').content },
      body: JSON.stringify(message),
    });
    const text = await response.text();
    let answer;
    try { answer = JSON.parse(text); } catch (error) { answer = { error: text.trim() }; }
    result.dataset.state = response.ok ? "sent" : "error";
    result.textContent = response.ok
      ? answer.sent + " reached " + answer.reached + " session(s)"
      : "not sent: " + (answer.error || "HTTP " + response.status);
  } catch (error) {
    result.dataset.state = "error";
    result.textContent = "not sent: " + error.message;
  }
}

function setUpSendPanel() {
  $("send-display").onclick = () => {
    const message = { command: "DISPLAY", accession: accessions($("send-accession").value) };
    for (const [id, key] of [["send-exam", "examCode"], ["send-nhs", "nhs"], ["send-chi", "chi"]]) {
      const value = $(id).value.trim();
      if (value) message[key] = value;
    }
    sendToCris(message);
  };
  $("send-clear").onclick = () => sendToCris({ command: "CLEAR" });
}

setUpSimulator();
setUpSendPanel();
setInterval(tickUptime, 1000);
pollStatus();
