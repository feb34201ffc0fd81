// Sends a fixed set of metrics to a node with OpenTelemetry's own SDK and
// OTLP/HTTP exporter, as an instrumented service would. Driven by
// host/tests/otlp.rs:
//
//   node send.mjs <url of /v1/metrics> <json|proto> <instance> <cumulative|delta> [gzip]
//
// Two collections, 50 ms apart, each exported at once (forceFlush):
//   http.requests  counter, unit {request}, route=/a   5, then 8 in all
//   pool.size      up-down counter, unit By            7, then 5
//   room.temp      gauge, unit Cel                     21.5, then 22
//   http.duration  histogram, unit s, bounds 0.1 1 10  0.05 0.5 0.5 5 50, nothing more
// The resource: service.name=otel-test, service.instance.id=<instance>,
// host.name=h1. Prints "exported N" for each successful export; exits 1
// on a failed one.
import { metrics } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import * as http from "@opentelemetry/exporter-metrics-otlp-http";
import * as proto from "@opentelemetry/exporter-metrics-otlp-proto";

const [url, encoding, instance, temporality, compression] = process.argv.slice(2);
const module = encoding === "json" ? http : proto;
const exporter = new module.OTLPMetricExporter({
  url,
  compression: compression === "gzip" ? "gzip" : "none",
  temporalityPreference:
    temporality === "delta"
      ? http.AggregationTemporalityPreference.DELTA
      : http.AggregationTemporalityPreference.CUMULATIVE,
});

let exports = 0;
let failed = false;
const original = exporter.export.bind(exporter);
exporter.export = (batch, done) =>
  original(batch, (result) => {
    if (result.code === 0) {
      exports += 1;
      console.log(`exported ${exports}`);
    } else {
      failed = true;
      console.error(`export failed: ${result.error}`);
    }
    done(result);
  });

const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
const provider = new MeterProvider({
  resource: resourceFromAttributes({
    "service.name": "otel-test",
    "service.instance.id": instance,
    "host.name": "h1",
  }),
  readers: [reader],
});
const meter = provider.getMeter("heroic-test", "1.0.0");

const requests = meter.createCounter("http.requests", { unit: "{request}" });
const pool = meter.createUpDownCounter("pool.size", { unit: "By" });
const temp = meter.createGauge("room.temp", { unit: "Cel" });
const duration = meter.createHistogram("http.duration", {
  unit: "s",
  advice: { explicitBucketBoundaries: [0.1, 1, 10] },
});

requests.add(5, { route: "/a" });
pool.add(7);
temp.record(21.5);
for (const v of [0.05, 0.5, 0.5, 5, 50]) duration.record(v);
await provider.forceFlush();
await new Promise((r) => setTimeout(r, 50));

requests.add(3, { route: "/a" });
pool.add(-2);
temp.record(22);
await provider.forceFlush();
// No shutdown: it would collect and export a third time.
process.exit(failed || exports === 0 ? 1 : 0);
