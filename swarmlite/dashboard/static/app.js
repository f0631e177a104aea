// swarmlite dashboard: polls this server's JSON and draws it. No framework, no build step.
// Everything from the cluster is put in the page as text (textContent, attributes), never
// as markup: service and node names are the users'.
"use strict";

const POLL_MS = 2000;
const METRICS_EVERY = 2; // polls
const KEEP_EVENTS = 200;
const STATES = ["pending", "starting", "running", "complete", "failed", "shutdown", "rejected",
  "orphaned"];
const SVG = "http://www.w3.org/2000/svg";

let lastEvent = 0;
let metrics = { services: {} };
let polls = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

function clock(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (response.status === 401) {
    throw new Error("not authorized: open the URL that `swarmlite dashboard` prints");
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// ------------------------------------------------------------------------ the state

function taskBox(task, node, specVersion) {
  // made from an older spec of its service than the current one: an update's old task
  const outdated = specVersion !== undefined && task.spec_version < specVersion;
  const label = `${task.slot || "•"} ${task.state}${outdated ? " · old" : ""}`;
  const why = [task.message, task.error].filter(Boolean).join(": ");
  return el("span", {
    class: "task",
    "data-task": task.id,
    "data-service": task.service,
    "data-node": node ? node.name : "",
    "data-node-state": node ? node.state : "",
    "data-slot": task.slot,
    "data-state": task.state,
    "data-desired": task.desired,
    "data-outdated": String(outdated),
    title: `${task.name}: ${task.state} (desired ${task.desired}) ${task.image}` +
      (outdated ? " (previous version)" : "") +
      (why ? ` — ${why}` : ""),
  }, label);
}

function nodeHeader(node) {
  const role = node.role + (node.leader ? " ★ leader" : "");
  return el("th", {
    class: "node", "data-node": node.name, "data-state": node.state, "data-role": node.role,
    "data-availability": node.availability, title: `${node.id} ${node.addr}`,
  },
  el("span", { class: "name" }, node.name),
  el("span", { class: "meta" }, role),
  el("span", { class: "meta state" }, node.state + (node.availability !== "active" ?
    ` · ${node.availability}` : "")));
}

function renderGrid(state) {
  const grid = document.getElementById("grid");
  const columns = state.nodes.slice();
  if (state.unassigned.length) {
    columns.push({ name: "(no node)", id: "", state: "unassigned", role: "", availability: "active",
      addr: "", leader: false, tasks: state.unassigned });
  }
  const head = el("tr", {}, el("th", { class: "corner" }, "service \\ node"));
  for (const node of columns) head.append(nodeHeader(node));
  const body = el("tbody");
  const services = state.services.map((s) => [s.id, s.name]);
  const versions = new Map(state.services.map((s) => [s.id, s.spec_version]));
  const known = new Set(services.map(([id]) => id));
  for (const node of columns) {
    for (const task of node.tasks) {
      if (!known.has(task.service_id)) {
        known.add(task.service_id);
        services.push([task.service_id, task.service]);
      }
    }
  }
  for (const [sid, name] of services) {
    const row = el("tr", { "data-service": name }, el("th", { class: "service" }, name));
    for (const node of columns) {
      const cell = el("td", { class: "cell", "data-node": node.name, "data-node-state": node.state });
      for (const task of node.tasks) {
        if (task.service_id === sid) cell.append(taskBox(task, node, versions.get(sid)));
      }
      row.append(cell);
    }
    body.append(row);
  }
  if (!services.length) {
    body.append(el("tr", {}, el("td", { class: "empty", colspan: columns.length + 1 },
      "no services yet")));
  }
  grid.replaceChildren(el("thead", {}, head), body);
}

function updateCell(service) {
  const update = service.update;
  const cell = el("td", { class: "update", "data-update": update ? update.state : "none" });
  if (!update) {
    cell.append("—");
    return cell;
  }
  cell.append(update.state.replace("_", " "));
  if (update.message) cell.append(el("span", { class: "message" }, update.message));
  return cell;
}

function chart(service) {
  const found = metrics.services[service.id];
  const samples = found ? found.samples : [];
  if (samples.length < 2) return el("span", { class: "note" }, "collecting…");
  const width = 200, height = 44, pad = 2;
  const t0 = samples[0][0], t1 = samples[samples.length - 1][0];
  const top = Math.max(1, ...samples.map((s) => Math.max(s[1], s[2])));
  const x = (t) => pad + ((t - t0) / Math.max(1e-9, t1 - t0)) * (width - 2 * pad - 14);
  const y = (v) => height - pad - (v / top) * (height - 2 * pad);
  const line = (index) => samples.map((s) => `${x(s[0]).toFixed(1)},${y(s[index]).toFixed(1)}`)
    .join(" ");
  const drawing = svg("svg", {
    class: "chart", width, height, viewBox: `0 0 ${width} ${height}`,
    "data-service": service.name, "data-samples": samples.length, role: "img",
  });
  const title = svg("title");
  title.textContent = `${service.name}: running (green) and desired (dashed) replicas, ` +
    `${clock(t0)}–${clock(t1)}`;
  drawing.append(title);
  drawing.append(svg("polyline", { class: "desired", points: line(2) }));
  drawing.append(svg("polyline", { class: "running", points: line(1) }));
  const label = svg("text", { class: "axis", x: width - 12, y: 10 });
  label.textContent = String(top);
  drawing.append(label);
  return drawing;
}

function renderServices(state) {
  const body = document.querySelector("#services tbody");
  const rows = state.services.map((s) => el("tr", { "data-service": s.name, "data-id": s.id },
    el("td", { class: "name" }, s.name),
    el("td", { class: "mode" }, s.mode),
    el("td", { class: "image" }, s.image),
    el("td", {
      class: "replicas", "data-running": s.running, "data-desired": s.desired,
      "data-ok": String(s.running === s.desired),
    }, `${s.running}/${s.desired}`),
    updateCell(s),
    el("td", { class: "metrics" }, chart(s))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: 6 }, "none")));
  body.replaceChildren(...rows);
}

function renderSummary(state) {
  const ready = state.nodes.filter((n) => n.state === "ready").length;
  const leader = state.nodes.find((n) => n.leader);
  const running = state.services.reduce((sum, s) => sum + s.running, 0);
  const desired = state.services.reduce((sum, s) => sum + s.desired, 0);
  document.getElementById("summary").textContent =
    `${state.nodes.length} nodes (${ready} ready) · ${state.services.length} services · ` +
    `${running}/${desired} tasks running · leader ${leader ? leader.name : "none"} · ` +
    `as of ${clock(state.time)}`;
}

function renderStatus(status, message) {
  const node = document.getElementById("status");
  node.dataset.status = status;
  node.textContent = status;
  const banner = document.getElementById("error");
  banner.hidden = !message;
  banner.textContent = message || "";
}

function renderLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren(...STATES.map((s) => el("span", { class: "task", "data-state": s }, s)),
    el("span", { class: "task", "data-state": "running", "data-outdated": "true" }, "old version"),
    el("span", { class: "task", "data-state": "running", "data-desired": "shutdown" },
      "stopping"));
}

// ------------------------------------------------------------------------ events

function changes(attributes) {
  // "state.old": "ready", "state.new": "down" -> "state ready→down"
  const words = [];
  for (const [key, value] of Object.entries(attributes || {})) {
    if (!key.endsWith(".new")) continue;
    const field = key.slice(0, -4);
    words.push(`${field} ${attributes[field + ".old"] || "∅"}→${value}`);
  }
  return words.join(", ");
}

function renderEvents(reply) {
  const list = document.getElementById("events");
  for (const event of reply.events) {
    const item = el("li", { "data-type": event.type, "data-action": event.action, "data-n": event.n },
      el("span", { class: "time" }, clock(event.time)),
      el("span", { class: "kind" }, `${event.type} ${event.action}`),
      el("span", { class: "name" }, event.name || event.id.slice(0, 12)),
      changes(event.attributes) ? el("span", { class: "why" }, changes(event.attributes)) : null,
      event.actor ? el("span", { class: "actor" }, `by ${event.actor}`) : null,
      event.message ? el("span", { class: "why" }, event.message) : null);
    list.prepend(item);
  }
  while (list.children.length > KEEP_EVENTS) list.lastElementChild.remove();
  lastEvent = reply.last;
  const status = document.getElementById("events-status");
  status.dataset.status = reply.status;
  status.textContent = reply.status === "live" ? "live" :
    `${reply.status}${reply.error ? ": " + reply.error : ""}`;
}

// ------------------------------------------------------------------------ polling

async function poll() {
  try {
    if (polls % METRICS_EVERY === 0) {
      metrics = await getJSON("/api/metrics");
      document.getElementById("metrics-note").textContent =
        `Charts: ${metrics.source}, every ${metrics.period}s.`;
    }
    const state = await getJSON("/api/state");
    renderSummary(state);
    renderGrid(state);
    renderServices(state);
    renderStatus(state.stale ? "stale" : "live", state.error);
    renderEvents(await getJSON(`/api/events?after=${lastEvent}`));
    document.body.dataset.loaded = "1";
  } catch (error) {
    renderStatus("error", String(error.message || error));
  }
  polls += 1;
  setTimeout(poll, POLL_MS);
}

renderLegend();
poll();
