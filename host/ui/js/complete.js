// Completion in the HQL box, from what the text before the cursor is:
//   `$key = cp|`        keys        (POST /metadata/key-suggest, /metadata/keys)
//   `… and si|`         tag names   (POST /metadata/tagkey-count)
//   `site = lo|`        tag values  (POST /metadata/tag-value-suggest)
//   `ave|` at the start aggregation names
// Suggestions are narrowed to the query's key once one is typed. Arrow keys
// move, Tab or Enter takes one, Escape closes the list.

import { post } from "./api.js";

const AGGREGATIONS = [
  "*", "average", "sum", "min", "max", "count", "stddev", "sum2", "spread", "quantile", "ratePerSecond",
  "cardinality", "delta", "deltaPerSecond", "notNegative", "topk", "bottomk", "abovek", "belowk",
  "pointsabove", "pointsbelow", "tdigest", "collapse",
];
const WORD = "[\\w.\\-:/]";
const TAG = "[A-Za-z_][\\w.\\-]*";
const KEY_CONTEXT = new RegExp(`\\$key\\s*(?:=|!=)\\s*"?(${WORD}*)$`);
const VALUE_CONTEXT = new RegExp(`(${TAG})\\s*(?:=|!=|\\^|~)\\s*"?(${WORD}*)$`);
const TAG_CONTEXT = new RegExp(`(?:\\bwhere|\\band|\\bor|\\bnot|\\(|\\+|!|\\bby|\\[|,)\\s*(\\$?${WORD}*)$`, "i");
const SELECT_CONTEXT = /^\s*(\w*)$/;

/** What the text before the cursor asks for: {kind, prefix, tag?}. */
export function context(before) {
  let m;
  if ((m = before.match(KEY_CONTEXT))) return { kind: "key", prefix: m[1] };
  if ((m = before.match(VALUE_CONTEXT)) && m[1] !== "$key") return { kind: "value", tag: m[1], prefix: m[2] };
  if ((m = before.match(TAG_CONTEXT))) return { kind: "tag", prefix: m[1] };
  if ((m = before.match(SELECT_CONTEXT))) return { kind: "aggregation", prefix: m[1] };
  return null;
}

/** The key the query already names, to narrow tag and value suggestions. */
function keyFilter(text) {
  const m = text.match(new RegExp(`\\$key\\s*=\\s*"?(${WORD}+)`));
  return m ? ["key", m[1]] : undefined;
}

/** HQL needs quotes around a value with characters outside a plain word. */
function quote(value) {
  return /^[A-Za-z0-9_.\-:/]+$/.test(value) && !/^\d/.test(value) ? value : JSON.stringify(value);
}

async function candidates(ctx, text) {
  const filter = keyFilter(text);
  const byPrefix = (names) => names.filter((n) => n.startsWith(ctx.prefix)).slice(0, 50);
  switch (ctx.kind) {
    case "aggregation":
      return byPrefix(AGGREGATIONS).map((name) => ({ text: name, kind: "aggregation" }));
    case "key": {
      const found = ctx.prefix
        ? (await post("/metadata/key-suggest", { key: ctx.prefix, limit: 50 })).suggestions.map((s) => s.key)
        : (await post("/metadata/keys", { limit: 200 })).keys;
      return byPrefix([...new Set(found)].sort()).map((k) => ({ text: quote(k), kind: "key" }));
    }
    case "tag": {
      const answer = await post("/metadata/tagkey-count", { filter, limit: 200 });
      const tags = answer.suggestions.map((s) => s.key);
      return byPrefix(["$key", ...tags]).map((t) => ({ text: t, kind: t === "$key" ? "key" : "tag" }));
    }
    case "value": {
      const answer = await post("/metadata/tag-value-suggest", { key: ctx.tag, filter, limit: 250 });
      return byPrefix(answer.values).map((v) => ({ text: quote(v), kind: ctx.tag }));
    }
  }
  return [];
}

/** Wires completion to the `input` and its list `ul`. */
export function attach(input, ul) {
  let items = [];
  let selected = -1;
  let asked = 0; // only the latest request's answer is shown

  const close = () => { ul.hidden = true; items = []; selected = -1; input.setAttribute("aria-expanded", "false"); };
  const render = () => {
    ul.replaceChildren(...items.map((item, i) => {
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === selected));
      li.textContent = item.text;
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = item.kind;
      li.append(kind);
      li.addEventListener("mousedown", (e) => { e.preventDefault(); take(i); });
      return li;
    }));
    ul.hidden = items.length === 0;
    input.setAttribute("aria-expanded", String(!ul.hidden));
    ul.children[selected]?.scrollIntoView({ block: "nearest" });
  };
  const take = (i) => {
    const item = items[i];
    if (!item) return;
    const cursor = input.selectionStart;
    const before = input.value.slice(0, cursor);
    const ctx = context(before);
    const start = cursor - (ctx ? ctx.prefix.length : 0) - (before.match(/"\w*$/) ? 1 : 0);
    input.value = input.value.slice(0, start) + item.text + " " + input.value.slice(cursor);
    const at = start + item.text.length + 1;
    input.setSelectionRange(at, at);
    close();
  };
  const suggest = async () => {
    const before = input.value.slice(0, input.selectionStart);
    const ctx = context(before);
    const ticket = ++asked;
    if (!ctx) return close();
    try {
      const found = await candidates(ctx, input.value);
      if (ticket !== asked) return;
      items = found;
      selected = found.length ? 0 : -1;
      render();
    } catch (_) {
      if (ticket === asked) close(); // a failed suggestion is not worth a message
    }
  };

  input.addEventListener("input", suggest);
  input.addEventListener("blur", close);
  input.addEventListener("keydown", (e) => {
    if (ul.hidden) {
      if (e.key === "Tab" && !e.shiftKey) { e.preventDefault(); suggest(); }
      return;
    }
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      selected = (selected + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      render();
    } else if ((e.key === "Tab" || e.key === "Enter") && !e.ctrlKey && selected >= 0) {
      e.preventDefault();
      take(selected);
    } else if (e.key === "Escape") {
      close();
    }
  });
}
