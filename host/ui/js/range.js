// The time-range picker: a relative choice ("last hour") or an absolute
// start and end, turned into the query API's absolute range when a query
// runs, so the chart's axis spans exactly what was asked.

const UNITS = { m: 60e3, h: 3600e3, d: 86400e3 };

const select = () => document.getElementById("range");
const startInput = () => document.getElementById("start");
const endInput = () => document.getElementById("end");

/** `datetime-local` wants local time without a zone: "2026-12-06T15:04:05". */
function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 19);
}

export function setup() {
  select().addEventListener("change", () => {
    const absolute = select().value === "absolute";
    document.getElementById("absolute").hidden = !absolute;
    if (absolute && !startInput().value) {
      const now = Date.now();
      startInput().value = toLocalInput(now - 3600e3);
      endInput().value = toLocalInput(now);
    }
  });
}

/** The picked range: {start, end} in ms since the epoch, or an Error. */
export function current(now = Date.now()) {
  const value = select().value;
  if (value === "absolute") {
    const start = new Date(startInput().value).getTime();
    const end = new Date(endInput().value).getTime();
    if (!Number.isFinite(start) || !Number.isFinite(end)) throw new Error("pick a start and an end");
    if (start >= end) throw new Error("the start must be before the end");
    return { start, end };
  }
  const m = value.match(/^(\d+)([mhd])$/);
  return { start: now - Number(m[1]) * UNITS[m[2]], end: now };
}

/** For the page's address: the picker's state as one string. */
export function save() {
  const value = select().value;
  if (value !== "absolute") return value;
  const { start, end } = current();
  return `${start}-${end}`;
}

export function restore(saved) {
  if (!saved) return;
  const m = saved.match(/^(\d+)-(\d+)$/);
  if (m) {
    select().value = "absolute";
    startInput().value = toLocalInput(Number(m[1]));
    endInput().value = toLocalInput(Number(m[2]));
    document.getElementById("absolute").hidden = false;
  } else if ([...select().options].some((o) => o.value === saved)) {
    select().value = saved;
  }
}
