// An answer drawn: a uPlot line chart with one series per group (legend
// with the value under the cursor), and a table of the groups with their
// figures and, on a click, their values.

let plot = null;

/** A color per group, spread around the wheel (golden angle). */
export function color(i) {
  return `hsl(${(i * 137.508) % 360}, 65%, 42%)`;
}

/**
 * A group's name: its tags that tell it from the other groups (the answer's
 * `commonTags` lists every value a tag has across the answer), else all its
 * tags, else its key.
 */
export function label(group, commonTags = {}) {
  const tags = Object.entries(group.tags || {});
  const telling = tags.filter(([k]) => (commonTags[k] || []).length > 1);
  const shown = telling.length ? telling : tags;
  if (shown.length) return shown.map(([k, v]) => `${k}=${v}`).join(", ");
  const counts = Object.entries(group.tagCounts || {}).map(([k, n]) => `${k}: ${n} values`);
  return counts.length ? counts.join(", ") : group.key || "all series";
}

/** The groups uPlot can draw: those of points (not distributions). */
export function drawable(answer) {
  return (answer.result || []).filter((g) => g.type === "points");
}

/**
 * Every timestamp of the groups, ascending, once each, and each group's
 * values on it (null where it has no point). Aggregated answers share their
 * buckets, so the first group's timestamps are usually all of them.
 */
function align(groups) {
  const first = groups[0]?.values || [];
  const shared = groups.every((g) => g.values.length === first.length &&
    g.values.every((p, i) => p[0] === first[i][0]));
  if (shared) return [first.map((p) => p[0]), ...groups.map((g) => g.values.map((p) => p[1]))];
  const all = new Float64Array(groups.reduce((n, g) => n + g.values.length, 0));
  let n = 0;
  for (const g of groups) for (const p of g.values) all[n++] = p[0];
  all.sort();
  const xs = [];
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) xs.push(all[i]);
  const ys = groups.map((g) => {
    const y = new Array(xs.length).fill(null);
    let j = 0;
    for (const [t, v] of g.values) {
      while (xs[j] < t) j++;
      y[j] = v;
    }
    return y;
  });
  return [xs, ...ys];
}

/** Draws `answer` into `container`; returns the number of series drawn. */
export function draw(container, answer) {
  plot?.destroy();
  plot = null;
  container.replaceChildren();
  const groups = drawable(answer);
  if (groups.length === 0) {
    container.textContent = "No series to draw.";
    return 0;
  }
  const range = answer.range;
  const options = {
    width: Math.max(container.clientWidth, 400),
    height: 420,
    ms: 1, // timestamps are milliseconds
    scales: { x: { time: true, range: () => [range.start, range.end] } },
    series: [
      { label: "time" },
      ...groups.map((g, i) => ({ label: label(g, answer.commonTags), stroke: color(i), width: 1.25, points: { show: false } })),
    ],
    legend: { live: true },
    cursor: { focus: { prox: 16 } },
    focus: { alpha: 0.3 },
  };
  plot = new uPlot(options, align(groups), container);
  return groups.length;
}

export function resize(container) {
  if (plot) plot.setSize({ width: Math.max(container.clientWidth, 400), height: 420 });
}

export function current() {
  return plot;
}

function figures(values) {
  let min = Infinity, max = -Infinity, sum = 0;
  for (const [, v] of values) { min = Math.min(min, v); max = Math.max(max, v); sum += v; }
  const n = values.length;
  return { n, min, max, mean: n ? sum / n : NaN, last: n ? values[n - 1][1] : NaN };
}

const fmt = (v) => (Number.isFinite(v) ? Number(v.toPrecision(6)).toString() : "–");
const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; };

/** The table view: a row per group; a click lists its values (up to 2,000). */
export function table(container, answer) {
  const groups = answer.result || [];
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  for (const h of ["group", "type", "points", "min", "max", "mean", "last"]) head.append(Object.assign(document.createElement("th"), { textContent: h }));
  const body = t.createTBody();
  groups.forEach((g, i) => {
    const row = body.insertRow();
    row.className = "group";
    const name = cell(label(g, answer.commonTags));
    name.prepend(Object.assign(document.createElement("span"), { className: "swatch", style: `background:${color(i)}` }));
    row.append(name, cell(g.type));
    if (g.type === "points") {
      const f = figures(g.values);
      row.append(cell(f.n, "num"), cell(fmt(f.min), "num"), cell(fmt(f.max), "num"), cell(fmt(f.mean), "num"), cell(fmt(f.last), "num"));
    } else {
      row.append(cell((g.values || []).length, "num"), cell(""), cell(""), cell(""), cell(""));
    }
    row.addEventListener("click", () => {
      const next = row.nextElementSibling;
      if (next?.classList.contains("values")) return next.remove();
      const detail = document.createElement("tr");
      detail.className = "values";
      const td = document.createElement("td");
      td.colSpan = 7;
      const values = (g.values || []).slice(0, 2000);
      td.textContent = values.map((p) => `${new Date(p[0]).toISOString()}  ${typeof p[1] === "number" ? fmt(p[1]) : JSON.stringify(p[1])}`).join("\n");
      td.style.whiteSpace = "pre";
      td.style.fontFamily = "ui-monospace, monospace";
      detail.append(td);
      row.after(detail);
    });
  });
  container.replaceChildren(t);
}
