// knevents UI: plain JavaScript, no build step. Every value from the server is put in the page as text
// (textContent / createElementNS), never as HTML, so event data cannot inject markup.
"use strict";

const TOKEN = document.querySelector('meta[name="knevents-token"]').content;
const SVG = "http://www.w3.org/2000/svg";
const state = { graph: null, counts: {}, lastFailed: null, events: [], selected: null, readOnly: false };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function post(path, body) {
  return api(path, { method: "POST", headers: { "content-type": "application/json", "x-knevents-token": TOKEN },
                     body: JSON.stringify(body || {}) });
}

function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

// --- flow graph (layout by dagre) ----------------------------------------------------------------

function countsText(node) {
  const c = state.counts, id = node.id;
  if (node.kind === "event") return `${c[id] || 0} events`;
  if (node.kind === "dependency") return `${c[id + ":filtered"] || 0} filtered`;
  if (node.kind === "sensor") return `${c[id + ":dlq"] || 0} dead-lettered`;
  return `${c[id + ":fired"] || 0} fired · ${c[id + ":failed"] || 0} failed`;
}

function drawGraph() {
  const graph = state.graph, root = document.getElementById("graph");
  if (!graph) return;
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 60, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    const width = Math.max(120, 7.2 * Math.max(node.label.length, countsText(node).length) + 20);
    g.setNode(node.id, { width, height: 42, node });
  }
  for (const edge of graph.edges) g.setEdge(edge.from, edge.to);
  dagre.layout(g);
  root.replaceChildren();
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7,
                                 markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#94a3b8" }));
  defs.append(marker);
  root.append(defs);
  for (const e of g.edges()) {
    const points = g.edge(e).points;
    root.append(svg("path", { class: "edge", d: "M" + points.map(p => `${p.x},${p.y}`).join(" L") }));
  }
  for (const id of g.nodes()) {
    const box = g.node(id), node = box.node;
    const failed = state.lastFailed && (id === state.lastFailed) ? " failed" : "";
    const group = svg("g", { class: `node ${node.kind}${failed}`, "data-id": id,
                             transform: `translate(${box.x - box.width / 2},${box.y - box.height / 2})` });
    group.append(svg("rect", { width: box.width, height: box.height }));
    group.append(svg("text", { x: 8, y: 17 }, node.label));
    group.append(svg("text", { x: 8, y: 33, class: "counts" }, countsText(node)));
    root.append(group);
  }
  const size = g.graph();
  root.setAttribute("width", size.width);
  root.setAttribute("height", size.height);
}

// --- live events -----------------------------------------------------------------------------------

function matchesFilter(ev) {
  const source = document.getElementById("filter-source").value;
  const sensor = document.getElementById("filter-sensor").value;
  return (!source || ev.source === source) && (!sensor || (ev.sensors || []).includes(sensor));
}

function drawEvents() {
  const body = document.querySelector("#events tbody");
  body.replaceChildren(...state.events.filter(matchesFilter).slice(0, 200).map(ev => {
    const row = el("tr", { "data-seq": ev.seq, onclick: () => showStory(ev.seq) },
      el("td", {}, ev.time ? new Date(ev.time).toLocaleTimeString() : ""),
      el("td", {}, `${ev.source}/${ev.event}${ev.replay ? " (replay)" : ""}`),
      el("td", { class: "id" }, (ev.id || "").slice(0, 12)),
      el("td", { class: "preview" }, ev.preview));
    if (ev.seq === state.selected) row.classList.add("selected");
    return row;
  }));
}

function fillFilters() {
  const sources = new Set(), sensors = new Set();
  for (const node of state.graph.nodes) {
    if (node.kind === "event") sources.add(node.label.split("/")[0]);
    if (node.kind === "sensor") sensors.add(node.label);
  }
  for (const [id, values] of [["filter-source", sources], ["filter-sensor", sensors], ["replay-sensor", sensors]]) {
    const select = document.getElementById(id);
    for (const value of [...values].sort()) select.append(el("option", { value }, value));
  }
}

// --- an event's story --------------------------------------------------------------------------------

async function showStory(seq) {
  state.selected = seq;
  drawEvents();
  const target = document.getElementById("story");
  let story;
  try { story = await api(`/api/events/${seq}`); }
  catch (err) { target.replaceChildren(el("p", { class: "bad" }, err.message)); return; }
  const parts = [el("h3", {}, `${story.event.source}/${story.event.subject} · ${story.event.id}`),
                 el("pre", { class: "data" }, JSON.stringify(story.event.data, null, 2))];
  if (!story.sensors.length) parts.push(el("p", { class: "muted" }, "No sensor here depends on this event."));
  for (const s of story.sensors) {
    const section = el("div", { class: "sensor-story" }, el("h4", {}, `sensor ${s.sensor}`));
    for (const dep of s.step.dependencies) {
      const verdict = dep.passed ? el("span", { class: "ok" }, "passed its filters")
                                 : el("span", { class: "bad" }, `filtered out: ${dep.error || "a filter failed"}`);
      section.append(el("div", { class: "dep" }, `dependency ${dep.name} matched — `, verdict));
    }
    for (const [trigger, held] of Object.entries(s.would_store)) {
      section.append(el("div", {}, `trigger ${trigger} stores ${Object.keys(held).join(", ")}; waiting for `
        + ((s.waiting[trigger] || []).join(", ") || "nothing")));
    }
    for (const f of s.step.fired) {
      section.append(el("div", { class: "ok" }, `fires ${f.trigger}: ${s.actions[f.trigger] || ""}`
        + (f.error ? ` (error: ${f.error})` : "")));
      const resolved = f.resource || f.payload || f.payload_raw;
      if (resolved) section.append(el("pre", { class: "resolved" }, JSON.stringify(resolved, null, 2)));
    }
    for (const f of s.fired) {
      section.append(el("div", { class: f.ok ? "ok" : "bad" },
        `${f.ok ? "fired" : "FAILED"} ${f.trigger} at ${f.time}: ${f.detail}`));
    }
    parts.push(section);
  }
  target.replaceChildren(...parts);
}

// --- state, firings, dead letters --------------------------------------------------------------------

async function drawState() {
  const rows = await api("/api/state");
  document.getElementById("state").replaceChildren(...rows.map(t => {
    const held = Object.entries(t.pending).map(([dep, p]) => `has ${dep} (id ${p.event_id.slice(0, 8)}…, `
      + `${ago(p.saved_at)})`);
    const text = t.error ? t.error : held.length
      ? `${held.join(", ")}, waiting for ${t.waiting_for.join(", ") || "nothing"}`
      : `nothing held, waiting for ${t.waiting_for.join(", ")}`;
    return el("li", { "data-trigger": `${t.sensor}/${t.trigger}` },
      el("strong", {}, `${t.sensor}/${t.trigger}`), ` ${t.condition}: ${text}`);
  }));
}

function firingItem(f) {
  return el("li", { class: f.ok ? "ok" : "bad" },
    `${f.time} ${f.ok ? "fired" : "FAILED"} ${f.sensor}/${f.trigger} (${f.kind}${f.dry_run ? ", dry run" : ""}): `
    + `${f.detail}`);
}

async function drawFirings() {
  const rows = await api("/api/firings");
  document.getElementById("firings").replaceChildren(...rows.slice(0, 50).map(firingItem));
}

async function drawDeadLetters() {
  const rows = await api("/api/deadletters");
  document.getElementById("deadletters").replaceChildren(...rows.map(d => {
    const item = el("li", { "data-seq": d.seq }, `${d.sensor}: ${d.source}/${d.event} ${d.id || ""} `
      + `after ${d.deliveries} deliveries — ${d.reason} `);
    if (!state.readOnly) {
      item.append(el("button", { class: "replay", onclick: () => act(`/api/deadletters/${d.seq}/replay`) }, "Replay"),
                  " ", el("button", { class: "discard", onclick: () => act(`/api/deadletters/${d.seq}/discard`) },
                          "Discard"));
    }
    return item;
  }));
}

async function act(path) {
  try { await post(path); } catch (err) { alert(err.message); }
  await Promise.all([drawDeadLetters(), drawFirings(), drawState()]);
}

async function replay(event) {
  event.preventDefault();
  const form = new FormData(event.target), out = document.getElementById("replay-result");
  const ask = { sensor: form.get("sensor"), trigger: form.get("trigger"), since: form.get("since"),
                dry_run: form.get("dry_run") === "on" };
  try {
    const result = await post("/api/replay", ask);
    out.textContent = result.dry_run
      ? `${result.events} archived event(s); would fire: ` + JSON.stringify(
          result.report.steps.flatMap(s => s.fired.map(f => f.trigger)))
      : `${result.events} event(s) replayed (replay ${result.replay})`;
  } catch (err) { out.textContent = err.message; }
}

// --- live updates ------------------------------------------------------------------------------------

function addEvents(more) {
  // The live stream opens before the first list is fetched (nothing falls in between): merge by sequence.
  const bySeq = new Map(state.events.map(ev => [ev.seq, ev]));
  for (const ev of more) bySeq.set(ev.seq, ev);
  state.events = [...bySeq.values()].sort((a, b) => b.seq - a.seq).slice(0, 300);
}

async function drawWorkers() {
  // `knevents run --workers N`: every process serving the runner; shown only when there is more than one
  const workers = await api("/api/workers");
  document.getElementById("workers").textContent = workers.length > 1
    ? `${workers.length} workers: ` + workers.map(w => `${w.index} (pid ${w.pid}${w.alive ? "" : ", exited"})`).join(", ")
    : "";
}

function follow() {
  const status = document.getElementById("live-status");
  const source = new EventSource("/api/live");
  source.onopen = () => { status.textContent = "live"; document.body.dataset.live = "1"; };
  source.onerror = () => { status.textContent = "reconnecting…"; };
  source.onmessage = message => {
    const batch = JSON.parse(message.data);
    state.counts = batch.counts;
    state.lastFailed = batch.last_failed;
    if (document.getElementById("follow").checked && batch.events.length) {
      addEvents(batch.events);
      drawEvents();
    }
    drawGraph();
    if (batch.firings.length) {
      const list = document.getElementById("firings");
      for (const f of batch.firings.slice().reverse()) list.prepend(firingItem(f));
    }
    if (batch.events.length || batch.firings.length) drawState();
    if (batch.firings.length || batch.dead_letters_changed) drawDeadLetters();
  };
}

async function start() {
  const first = await api("/api/graph");
  state.graph = first.graph; state.counts = first.counts; state.lastFailed = first.last_failed;
  state.readOnly = first.read_only;
  fillFilters();
  drawGraph();
  follow();
  addEvents(await api("/api/events"));
  drawEvents();
  for (const id of ["filter-source", "filter-sensor"]) document.getElementById(id).onchange = drawEvents;
  document.getElementById("replay-form").onsubmit = replay;
  await Promise.all([drawState(), drawFirings(), drawDeadLetters(), drawWorkers()]);
  setInterval(drawState, 5000);  // "3 min ago" keeps moving even when nothing arrives
  setInterval(drawWorkers, 5000);  // a worker restarted by worker 0 has a new pid
}

start();
