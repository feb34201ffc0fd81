// The console's page: tabs, the query form and its answer, and the page's
// address (#q=…&range=…) so that a query can be linked to and reloaded.
//
// Modules: api (HTTP), range (the time picker), complete (HQL completion),
// chart (chart and table), browser (series browser), status (status tab).

import { post, get, ApiError } from "./api.js";
import * as range from "./range.js";
import { attach } from "./complete.js";
import * as chart from "./chart.js";
import * as browser from "./browser.js";
import * as status from "./status.js";

const $ = (id) => document.getElementById(id);

/** What the last query drew, for people and for tests reading the page. */
const state = { runs: 0, groups: 0, drawn: 0, points: 0, ms: 0, renderMs: 0, running: false, answer: null };
window.heroicConsole = state;

function showTab(name) {
  for (const b of document.querySelectorAll("nav .tab")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== `tab-${name}`;
  if (name === "series") browser.load(openQuery);
  if (name === "status") status.refresh();
}

function showView(name) {
  for (const b of document.querySelectorAll(".views .view")) b.setAttribute("aria-selected", String(b.dataset.view === name));
  $("chart").hidden = name !== "chart";
  $("table").hidden = name !== "table";
  if (name === "chart") chart.resize($("chart"));
}

function notices(answer, error) {
  const out = [];
  const line = (cls, text) => out.push(Object.assign(document.createElement("div"), { className: cls, textContent: text }));
  if (error) line("error", error.message);
  for (const limit of answer?.limits || []) {
    line("limit", `Limit hit: ${limit} — the answer is cut short (see the node's query limits).`);
  }
  for (const e of answer?.errors || []) {
    const where = e.type === "shard" ? ` (shard ${JSON.stringify(e.shard)}, ${e.nodes?.join(", ")})` : "";
    line("error", `${e.error || e.message}${where}`);
  }
  $("notices").replaceChildren(...out);
}

async function run() {
  const hql = $("hql").value.trim();
  if (!hql) return;
  let picked;
  try {
    picked = range.current();
  } catch (e) {
    return notices(null, e);
  }
  history.replaceState(null, "", `#q=${encodeURIComponent(hql)}&range=${encodeURIComponent(range.save())}`);
  state.running = true;
  $("run").disabled = true;
  $("summary").textContent = "running…";
  const started = performance.now();
  try {
    const answer = await post("/query/metrics", {
      query: hql,
      range: { type: "absolute", start: Math.floor(picked.start), end: Math.ceil(picked.end) },
    });
    state.ms = Math.round(performance.now() - started);
    const drawStart = performance.now();
    state.drawn = chart.draw($("chart"), answer);
    chart.table($("table"), answer);
    state.renderMs = Math.round(performance.now() - drawStart);
    state.groups = answer.result.length;
    state.points = answer.result.reduce((n, g) => n + (g.values?.length || 0), 0);
    state.answer = answer;
    notices(answer);
    $("summary").textContent = `${state.groups} groups, ${state.points} points, ` +
      `${answer.preAggregationSampleSize} points read; answered in ${state.ms} ms, drawn in ${state.renderMs} ms`;
  } catch (e) {
    state.drawn = 0;
    state.answer = null;
    $("summary").textContent = "";
    chart.draw($("chart"), { result: [] });
    notices(null, e instanceof ApiError || e instanceof Error ? e : new Error(String(e)));
  } finally {
    state.runs += 1;
    state.running = false;
    $("run").disabled = false;
  }
}

/** Runs `hql` in the query tab (from the series browser). */
function openQuery(hql) {
  $("hql").value = hql;
  showTab("query");
  run();
}

function fromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  range.restore(params.get("range"));
  if (params.get("q")) {
    $("hql").value = params.get("q");
    run();
  }
}

range.setup();
attach($("hql"), $("completions"));
for (const b of document.querySelectorAll("nav .tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
for (const b of document.querySelectorAll(".views .view")) b.addEventListener("click", () => showView(b.dataset.view));
$("query-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
$("hql").addEventListener("keydown", (e) => { if (e.key === "Enter" && e.ctrlKey) { e.preventDefault(); run(); } });
$("status-refresh").addEventListener("click", () => status.refresh());
setInterval(() => { if (!$("tab-status").hidden) status.refresh(); }, 5000);
window.addEventListener("resize", () => chart.resize($("chart")));
get("/").then((s) => { $("service").textContent = `${s.name || "heroic"} ${s.version || ""}`; }).catch(() => {});
fromAddress();
