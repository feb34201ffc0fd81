// The status tab: every backend and consumer from GET /status, with the
// statistics each reports (read from GET /metrics, where they are labelled
// by component), refreshed every 5 s while the tab is open.

import { get, scrape } from "./api.js";

const $ = (id) => document.getElementById(id);

function statisticsOf(samples) {
  const by = new Map();
  for (const s of samples) {
    if (s.name !== "heroic_component_statistic") continue;
    const id = `${s.labels.role}/${s.labels.id}`;
    if (!by.has(id)) by.set(id, []);
    by.get(id).push(`${s.labels.statistic} ${Number(s.value.toPrecision(6))}`);
  }
  return by;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const [text, cls] of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
  }
  return tr;
}

function table(headings, rows) {
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  for (const h of headings) head.append(Object.assign(document.createElement("th"), { textContent: h }));
  t.createTBody().append(...rows);
  return t;
}

export async function refresh() {
  let status;
  try {
    // 503 is still a status answer: a component is not ok.
    status = await get("/status").catch((e) => (e.status === 503 ? e.body : Promise.reject(e)));
  } catch (e) {
    $("status").replaceChildren(Object.assign(document.createElement("p"), { className: "bad", textContent: e.message }));
    return;
  }
  const stats = statisticsOf(await scrape().catch(() => []));
  const flag = (v) => (v ? ["yes", "ok"] : ["no", "bad"]);
  const components = (status.components || []).map((c) => row([
    [c.role], [c.id], flag(c.ok), flag(c.ready), [c.message || ""],
    [(stats.get(`${c.role}/${c.id}`) || []).sort().join(" · "), "stats"],
  ]));
  const consumers = (status.consumers?.details || []).map((c) => row([
    [c.id], [c.plugin], flag(c.ok), flag(c.ready), [String(c.messagesConsumed)], [String(c.pointsWritten)],
    [JSON.stringify(c.decodeErrors)], [String(c.writeErrors)],
    [Object.entries(c.statistics || {}).map(([k, v]) => `${k} ${v}`).join(" · "), "stats"],
  ]));
  const overall = Object.assign(document.createElement("p"), {
    className: status.ok ? "ok" : "bad",
    textContent: status.ok ? "Every component is ok." : "A component is not ok.",
  });
  const parts = [overall, Object.assign(document.createElement("h2"), { textContent: "Backends" }),
    table(["role", "id", "ok", "ready", "message", "statistics"], components)];
  if (consumers.length) {
    parts.push(Object.assign(document.createElement("h2"), { textContent: "Consumers" }),
      table(["id", "plugin", "ok", "ready", "messages", "points", "refused", "write errors", "statistics"], consumers));
  }
  $("status").replaceChildren(...parts);
  $("status-when").textContent = `as of ${new Date().toLocaleTimeString()}`;
}
