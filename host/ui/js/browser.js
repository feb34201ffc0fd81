// The series browser: keys (POST /metadata/keys), a key's tags with the
// number of values of each (POST /metadata/tagkey-count) and its series
// count (POST /metadata/series-count), then a tag's values
// (POST /metadata/tag-value-suggest). Picking a value opens its series in
// the query tab.

import { post } from "./api.js";

const $ = (id) => document.getElementById(id);

function item(text, count, onClick) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = text;
  li.append(name);
  if (count !== undefined) {
    const c = document.createElement("span");
    c.className = "count";
    c.textContent = count;
    li.append(c);
  }
  li.addEventListener("click", () => {
    for (const other of li.parentElement.children) other.setAttribute("aria-selected", "false");
    li.setAttribute("aria-selected", "true");
    onClick();
  });
  return li;
}

function failed(ul, error) {
  ul.replaceChildren(Object.assign(document.createElement("li"), { textContent: error.message, className: "bad" }));
}

let keys = [];

function showKeys(openQuery) {
  const filter = $("keys-filter").value;
  const shown = keys.filter((k) => k.includes(filter)).slice(0, 1000);
  $("keys").replaceChildren(...shown.map((k) => item(k, undefined, () => showTags(k, openQuery))));
}

async function showTags(key, openQuery) {
  $("tags-of").textContent = `of ${key}`;
  $("values").replaceChildren();
  $("values-of").textContent = "";
  const filter = ["key", key];
  try {
    const [tags, count] = await Promise.all([
      post("/metadata/tagkey-count", { filter, limit: 500 }),
      post("/metadata/series-count", { filter }),
    ]);
    $("tags-of").textContent = `of ${key} (${count.count}${count.limited ? "+" : ""} series)`;
    $("tags").replaceChildren(
      item("(all series of the key)", count.count, () => openQuery(`* where $key = ${JSON.stringify(key)}`)),
      ...tags.suggestions.map((s) => item(s.key, `${s.count} values`, () => showValues(key, s.key, openQuery))),
    );
  } catch (e) {
    failed($("tags"), e);
  }
}

async function showValues(key, tag, openQuery) {
  $("values-of").textContent = `of ${tag}`;
  try {
    const answer = await post("/metadata/tag-value-suggest", { key: tag, filter: ["key", key], limit: 1000 });
    const values = answer.values.map((v) =>
      item(v, undefined, () => openQuery(`* where $key = ${JSON.stringify(key)} and ${tag} = ${JSON.stringify(v)}`)));
    if (answer.limited) values.push(Object.assign(document.createElement("li"), { textContent: "… more not listed" }));
    $("values").replaceChildren(...values);
  } catch (e) {
    failed($("values"), e);
  }
}

/** Loads the keys; `openQuery(hql)` runs a query in the query tab. */
export async function load(openQuery) {
  $("keys-filter").oninput = () => showKeys(openQuery);
  try {
    const answer = await post("/metadata/keys", {});
    keys = answer.keys.slice().sort();
    $("keys-count").textContent = `(${keys.length})`;
    showKeys(openQuery);
  } catch (e) {
    failed($("keys"), e);
  }
}
