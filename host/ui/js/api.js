// The node's HTTP API, as the console uses it. Every request is same-origin
// (the console is served by the node it talks to), so no CORS is needed.

const CLIENT_ID = "heroic-console";

/** An answer that was not 2xx: its status and Heroic's error message. */
export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
    this.body = body;
  }
}

function describe(status, body) {
  if (body && typeof body === "object" && body.message) {
    const where = body.line ? ` (line ${body.line}, column ${body.col})` : "";
    return `${status}: ${body.message}${where}`;
  }
  return `${status}: ${typeof body === "string" ? body : JSON.stringify(body)}`;
}

async function send(method, path, body) {
  const init = { method, headers: { "x-client-id": CLIENT_ID } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch (_) { /* not JSON: keep the text */ }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const post = (path, body) => send("POST", path, body);
export const get = (path) => send("GET", path);

/** The node's Prometheus scrape, as [{name, labels, value}]. */
export async function scrape() {
  const response = await fetch("/metrics");
  const text = await response.text();
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}
