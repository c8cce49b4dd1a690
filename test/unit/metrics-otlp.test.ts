// The real OTLP/gRPC exporter against a loopback HTTP/2 receiver: points, metadata, gzip, TLS, failure logging, no secrets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { emptyCounters, sum, type InterfaceCounters } from '../../src/bpf/counter-layout.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { CarnxConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import {
  EXPORT_FAILED,
  FIRST_EXPORT_SUCCEEDED,
  createOtlpExporter,
  type ExportState,
} from '../../src/metrics/otlp-exporter.js';
import { MetricsPipeline } from '../../src/metrics/metrics-pipeline.js';
import { systemRoots } from '../../src/metrics/tls-credentials.js';
import type { InterfaceSnapshot } from '../../src/reader/interface-snapshot.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';

const CANARY = 'canary-7f3e9b21-secret';
const SINCE = 1_700_000_000_987_654_321n;
const EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

/** The subset of the OTLP metrics protocol (opentelemetry-proto, metrics v1) this test reads; field numbers per the spec. */
const OTLP = protobuf
  .parse(`syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message InstrumentationScope { string name = 1; string version = 2; }
enum Temporality { UNSPECIFIED = 0; DELTA = 1; CUMULATIVE = 2; }
message NumberDataPoint { repeated KeyValue attributes = 7; fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3;
  oneof value { double as_double = 4; sfixed64 as_int = 6; } }
message HistogramDataPoint { repeated KeyValue attributes = 9; fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3;
  fixed64 count = 4; optional double sum = 5; repeated fixed64 bucket_counts = 6; repeated double explicit_bounds = 7;
  optional double min = 11; optional double max = 12; }
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; Temporality aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { repeated HistogramDataPoint data_points = 1; Temporality aggregation_temporality = 2; }
message Metric { string name = 1; string description = 2; string unit = 3; Gauge gauge = 5; Sum sum = 7; Histogram histogram = 9; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }`)
  .root.lookupType('ExportMetricsServiceRequest');

interface KV {
  key: string;
  value: { stringValue?: string; intValue?: string };
}
interface NumberPoint {
  attributes?: KV[];
  startTimeUnixNano: string;
  timeUnixNano: string;
  asInt?: string;
}
interface HistPoint {
  attributes?: KV[];
  startTimeUnixNano: string;
  count: string;
  sum?: number;
  bucketCounts: string[];
  explicitBounds: number[];
  min?: number;
  max?: number;
}
interface Metric {
  name: string;
  description: string;
  unit: string;
  gauge?: { dataPoints: NumberPoint[] };
  sum?: { dataPoints: NumberPoint[]; aggregationTemporality: string; isMonotonic?: boolean };
  histogram?: { dataPoints: HistPoint[]; aggregationTemporality: string };
}
interface Scope {
  scope: { name: string; version?: string };
  metrics: Metric[];
}
interface Request {
  resourceMetrics: { resource: { attributes: KV[] }; scopeMetrics: Scope[] }[];
}
interface Received {
  headers: http2.IncomingHttpHeaders;
  compressed: boolean;
  request: Request;
  clientCn?: string;
}

/** A loopback gRPC receiver at the HTTP/2 level, so the test sees the compressed-flag byte and every header. */
class Receiver {
  readonly received: Received[] = [];
  failing = false;
  /** Answers with an OTLP partial success: 3 points rejected, error message "bad point". */
  partial = false;
  /** What a failing collector echoes back in its error message. */
  echo = CANARY;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  constructor(readonly server: http2.Http2Server | http2.Http2SecureServer) {
    server.on('session', (s: http2.ServerHttp2Session) => {
      this.sessions.add(s);
      s.on('close', () => this.sessions.delete(s));
    });
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => this.answer(stream, headers, Buffer.concat(chunks)));
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }
  async close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
  private answer(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, frame: Buffer): void {
    const compressed = frame[0] === 1;
    const message = frame.subarray(5, 5 + frame.readUInt32BE(1));
    const decoded = OTLP.decode(compressed ? gunzipSync(message) : message);
    const request = OTLP.toObject(decoded, { longs: String, enums: String }) as Request;
    const socket = stream.session?.socket as TLSSocket | undefined;
    const clientCn = String(socket?.getPeerCertificate?.()?.subject?.CN ?? '') || undefined;
    this.received.push({ headers, compressed, request, clientCn });
    if (this.failing) {
      // A misbehaving collector that echoes the API key: the agent must not log it.
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '14',
          'grpc-message': `collector overloaded: key ${this.echo}`,
        },
        { endStream: true },
      );
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    // ExportMetricsServiceResponse, uncompressed: empty, or partial_success (1) {rejected_data_points (1): 3,
    // error_message (2): "bad point"}.
    const body = this.partial
      ? Buffer.concat([Buffer.from([0x0a, 13, 0x08, 3, 0x12, 9]), Buffer.from('bad point')])
      : Buffer.alloc(0);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(body.length, 1);
    stream.end(Buffer.concat([prefix, body]));
  }
}

let dir = '';
const cleanups = new Cleanups();
const lines: string[] = [];
const logger = createLogger('info', {
  write: (line: string) => {
    lines.push(line);
  },
});
test.before(
  reported(() => {
    dir = mkdtempSync(join(tmpdir(), 'carnx-otlp-'));
  }),
);
test.after(async () => {
  await cleanups.run();
  rmSync(dir, { recursive: true, force: true });
});

function knownCounters(): InterfaceCounters {
  const c = emptyCounters();
  c.packets = c.packets.map((_, i) => 500n + BigInt(i));
  c.bytes = c.packets.map((p, i) => p * 90n + (i === 1 ? 1n << 45n : 0n));
  c.sizeBuckets = [10n, 20n, 30n, 40n, 50n, 60n, 70n, sum(c.packets) - 280n];
  c.vlanPackets = 3n;
  return c;
}
const source = (): InterfaceSnapshot[] => [
  {
    name: 'eth0',
    ifindex: 2,
    direction: 'receive',
    hook: 'xdp-native',
    countingSinceUnixNs: SINCE,
    counters: knownCounters(),
  },
];

async function pipelineTo(
  receiver: Receiver,
  tune: (c: CarnxConfig) => void = () => {},
  inheritedExportState?: ExportState,
  env: NodeJS.ProcessEnv = {},
): Promise<MetricsPipeline> {
  const port = await receiver.listen();
  cleanups.add(receiver, (r) => r.close());
  const config = loadConfig({ argv: ['--otlp-endpoint', `http://127.0.0.1:${port}`], env: {} });
  config.otlp.headers = { 'x-api-key': CANARY };
  tune(config);
  const pipeline = new MetricsPipeline({
    config,
    logger,
    source,
    packageVersion: '0.0.1-test',
    attachedByHook: () => ({ 'xdp-native': 1 }),
    env: { K8S_NODE_NAME: 'node-b', ...env },
    inheritedExportState,
  });
  cleanups.add(pipeline, (p) => p.stop(2000));
  pipeline.start();
  return pipeline;
}

const attrs = (kvs: KV[] = []) =>
  Object.fromEntries(kvs.map((kv) => [kv.key, kv.value.stringValue ?? kv.value.intValue]));
const scope = (r: Received, name: string) =>
  r.request.resourceMetrics[0]!.scopeMetrics.find((s) => s.scope.name === name);
const metric = (r: Received, scopeName: string, name: string) =>
  scope(r, scopeName)?.metrics.find((m) => m.name === name);

test('a gzip-compressed export with the configured metadata and exact data points', async () => {
  const receiver = new Receiver(http2.createServer());
  const pipeline = await pipelineTo(receiver);
  await pipeline.forceCollectAndExport();
  await waitFor('one export', () => receiver.received.length === 1);
  const r = receiver.received[0]!;
  assert.is(r.headers[':path'], EXPORT_PATH);
  assert.is(r.headers['x-api-key'], CANARY);
  assert.is(r.headers['grpc-encoding'], 'gzip');
  assert.ok(r.compressed, 'the message frame is flagged compressed');
  const resource = attrs(r.request.resourceMetrics[0]!.resource.attributes);
  assert.equal(
    [resource['service.name'], resource['service.version'], resource['service.instance.id'], resource['k8s.node.name']],
    ['carnx', '0.0.1-test', 'node-b', 'node-b'],
  );
  assert.equal(scope(r, 'carnx')!.scope, { name: 'carnx', version: '0.0.1-test' });
  const known = knownCounters();
  const packets = metric(r, 'carnx', 'carnx.packets')!;
  assert.equal([packets.unit, packets.sum!.dataPoints.map((p) => p.asInt)], ['{packet}', known.packets.map(String)]);
  const bytes = metric(r, 'carnx', 'carnx.bytes')!;
  assert.is(bytes.unit, 'By');
  assert.equal([bytes.sum!.aggregationTemporality, bytes.sum!.isMonotonic], ['CUMULATIVE', true]);
  assert.equal(
    bytes.sum!.dataPoints.map((p) => p.asInt),
    known.bytes.map(String),
    'exact int64 values, 2^45 included',
  );
  assert.equal(attrs(bytes.sum!.dataPoints[7]!.attributes), {
    'network.interface.name': 'eth0',
    'network.io.direction': 'receive',
    'network.type': 'ipv6',
    'network.transport': 'icmpv6',
  });
  assert.ok(
    bytes.sum!.dataPoints.every((p) => p.startTimeUnixNano === String(SINCE)),
    'start time to the nanosecond',
  );
  const hist = metric(r, 'carnx', 'carnx.packet.size')!.histogram!;
  assert.is(hist.aggregationTemporality, 'CUMULATIVE');
  const p = hist.dataPoints[0]!;
  assert.equal(
    [p.count, p.sum, p.bucketCounts, p.explicitBounds],
    [
      String(sum(known.packets)),
      Number(sum(known.bytes)),
      known.sizeBuckets.map(String),
      [64, 127, 255, 511, 1023, 1518, 9000],
    ],
  );
  assert.equal([p.min, p.max], [undefined, undefined]);
  assert.equal(
    metric(r, 'carnx', 'carnx.vlan.packets')!.sum!.dataPoints.map((d) => d.asInt),
    ['3'],
  );
  const interfaces = metric(r, 'carnx.agent', 'carnx.agent.interfaces')!.gauge!.dataPoints;
  assert.equal(
    interfaces.map((d) => [attrs(d.attributes), d.asInt ?? null]),
    [
      [{ 'carnx.hook': 'xdp-native', 'network.io.direction': 'receive', 'carnx.xdp.mode': 'native' }, '1'],
      [{ 'carnx.hook': 'xdp-generic', 'network.io.direction': 'receive', 'carnx.xdp.mode': 'generic' }, '0'],
      [{ 'carnx.hook': 'xdp-offload', 'network.io.direction': 'receive', 'carnx.xdp.mode': 'offload' }, '0'],
      [{ 'carnx.hook': 'tc-ingress', 'network.io.direction': 'receive' }, '0'],
      [{ 'carnx.hook': 'tc-egress', 'network.io.direction': 'transmit' }, '0'],
    ],
  );
});

test('readiness: pending until the first export succeeds; a reloaded pipeline reports the old state until its own outcome', async () => {
  const fresh = await pipelineTo(new Receiver(http2.createServer()));
  assert.is(fresh.exportState(), 'pending');
  await fresh.forceCollectAndExport();
  assert.is(fresh.exportState(), 'exporting', 'first export succeeded');

  const down = new Receiver(http2.createServer());
  down.failing = true;
  const reloaded = await pipelineTo(down, () => {}, fresh.exportState());
  assert.is(reloaded.exportState(), 'exporting', 'inherited before its own first export');
  await reloaded.forceCollectAndExport();
  assert.is(reloaded.exportState(), 'failing', 'its own outcome wins');
});

test('a failure burst logs one warn and one recovery line, counts failures, and never logs the header value', async () => {
  const receiver = new Receiver(http2.createServer());
  const pipeline = await pipelineTo(receiver);
  const before = lines.length;
  pipeline.recordAttachFailure('foreign-program');
  pipeline.recordAttachFailure('foreign-program');
  assert.is(pipeline.exportState(), 'pending', 'no export yet: not ready');
  receiver.failing = true;
  for (let i = 0; i < 3; i++) await pipeline.forceCollectAndExport();
  assert.is(pipeline.exportState(), 'failing', 'failing since the last success');
  receiver.failing = false;
  await pipeline.forceCollectAndExport();
  assert.is(pipeline.exportState(), 'exporting', 'recovered');
  await waitFor('four exports', () => receiver.received.length === 4);
  type Line = { level: string; msg: string; error?: string; failedExports?: number };
  const logged = lines.slice(before).map((l) => JSON.parse(l) as Line);
  const warns = logged.filter((l) => l.level === 'warn');
  assert.is(warns.length, 1, 'one warn for the burst');
  assert.is(warns[0]!.msg, EXPORT_FAILED);
  for (const how of [
    'metrics export failed',
    '--otlp-endpoint host:port',
    'otlp.endpoint',
    'OTEL_EXPORTER_OTLP_ENDPOINT',
  ])
    assert.ok(warns[0]!.msg.includes(how), `the warn line says "${how}"`);
  assert.is(warns[0]!.error, '14 UNAVAILABLE: collector overloaded: key [redacted]');
  const recovered = logged.filter((l) => l.msg === 'export recovered');
  assert.equal(
    recovered.map((l) => [l.level, l.failedExports]),
    [['info', 3]],
  );
  const failures = metric(receiver.received[3]!, 'carnx.agent', 'carnx.agent.export.failures')!.sum!.dataPoints;
  assert.equal(
    failures.map((d) => d.asInt),
    ['3'],
  );
  const attach = metric(receiver.received[3]!, 'carnx.agent', 'carnx.agent.attach.failures')!.sum!.dataPoints;
  assert.equal(
    attach.map((d) => [attrs(d.attributes), d.asInt]),
    [[{ 'carnx.reason': 'foreign-program' }, '2']],
  );
  const duration = metric(receiver.received[3]!, 'carnx.agent', 'carnx.agent.collection.duration')!;
  assert.is(duration.unit, 's');
  // The SDK collects its instruments concurrently with the producers, so this collection's own timing may be in or not.
  assert.ok(['3', '4'].includes(duration.histogram!.dataPoints[0]!.count), 'every collection so far was timed');
  assert.ok(lines.length > before, 'log lines were captured');
  for (const line of lines) assert.not.match(line, CANARY);
});

test('the first successful export logs one info line, once; a reload that was exporting does not repeat it', async () => {
  type Line = { level: string; msg: string; target?: string };
  const since = (mark: number) => lines.slice(mark).map((l) => JSON.parse(l) as Line);
  const firsts = (mark: number) => since(mark).filter((l) => l.msg === FIRST_EXPORT_SUCCEEDED);
  const receiver = new Receiver(http2.createServer());
  const mark = lines.length;
  const pipeline = await pipelineTo(receiver);
  receiver.failing = true;
  await pipeline.forceCollectAndExport();
  assert.equal(firsts(mark), [], 'not after a failure');
  receiver.failing = false;
  for (let i = 0; i < 3; i++) await pipeline.forceCollectAndExport();
  assert.equal(
    firsts(mark).map((l) => [l.level, l.target]),
    [['info', `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}`]],
    'one info line naming the endpoint, for three successes',
  );
  receiver.failing = true;
  await pipeline.forceCollectAndExport();
  receiver.failing = false;
  await pipeline.forceCollectAndExport();
  assert.is(firsts(mark).length, 1, 'a recovery is not a first export');
  assert.is(since(mark).filter((l) => l.msg === EXPORT_FAILED).length, 2, 'one warn per failure burst');

  const reloadMark = lines.length;
  const reloaded = await pipelineTo(new Receiver(http2.createServer()), () => {}, pipeline.exportState());
  await reloaded.forceCollectAndExport();
  assert.is(reloaded.exportState(), 'exporting');
  assert.equal(firsts(reloadMark), [], 'the process had exported already');
});

test('the OTel exporter semantics kept: OTEL_EXPORTER_OTLP_*HEADERS fill in, its user agent, partial successes logged', async () => {
  const saved = { ...process.env };
  // The exporter reads these from process.env itself; otlp.headers wins on a shared name.
  process.env.OTEL_EXPORTER_OTLP_HEADERS = 'x-env-generic=g1,x-api-key=from-env';
  process.env.OTEL_EXPORTER_OTLP_METRICS_HEADERS = 'x-env-metrics=m1';
  const receiver = new Receiver(http2.createServer());
  receiver.partial = true;
  const before = lines.length;
  try {
    const pipeline = await pipelineTo(receiver);
    await pipeline.forceCollectAndExport();
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
    delete process.env.OTEL_EXPORTER_OTLP_METRICS_HEADERS;
    Object.assign(process.env, saved);
  }
  await waitFor('one export', () => receiver.received.length === 1);
  const headers = receiver.received[0]!.headers;
  assert.equal(
    [headers['x-api-key'], headers['x-env-generic'], headers['x-env-metrics']],
    [CANARY, 'g1', 'm1'],
    'otlp.headers first, the OTEL variables fill in',
  );
  assert.match(String(headers['user-agent']), /^OTel-OTLP-Exporter-JavaScript\/0\.223\.0 grpc-node-js\//);
  type Line = { level: string; msg: string; rejectedDataPoints?: number; error?: string };
  const logged = lines.slice(before).map((l) => JSON.parse(l) as Line);
  const rejected = logged.filter((l) => l.msg.startsWith('the collector rejected points of an export'));
  assert.equal(
    rejected.map((l) => [l.level, l.rejectedDataPoints, l.error]),
    [['warn', 3, 'bad point']],
    "the collector's partial success reached the log",
  );
});

test('compression none sends uncompressed frames', async () => {
  const receiver = new Receiver(http2.createServer());
  const pipeline = await pipelineTo(receiver, (c) => {
    c.otlp.compression = 'none';
  });
  await pipeline.forceCollectAndExport();
  await waitFor('one export', () => receiver.received.length === 1);
  assert.not.ok(receiver.received[0]!.compressed);
  assert.is.not(receiver.received[0]!.headers['grpc-encoding'], 'gzip');
  assert.ok(metric(receiver.received[0]!, 'carnx', 'carnx.packets'), 'the request decoded');
});

/** A self-signed EC certificate and its key in the test directory. */
function pem(name: string, cn: string, san: string): { key: string; cert: string } {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=${san}`,
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      join(dir, `${name}.crt`),
    ],
    { stdio: 'ignore' },
  );
  return { key: join(dir, `${name}.key`), cert: join(dir, `${name}.crt`) };
}

test('mutual TLS with CA, client certificate and key files', async () => {
  const server = pem('server', 'carnx-test-collector', 'IP:127.0.0.1');
  const client = pem('client', 'carnx-test-agent', 'DNS:agent.invalid');
  const receiver = new Receiver(
    http2.createSecureServer({
      key: readFileSync(server.key),
      cert: readFileSync(server.cert),
      ca: readFileSync(client.cert),
      requestCert: true,
      rejectUnauthorized: true,
    }),
  );
  const pipeline = await pipelineTo(receiver, (c) => {
    c.otlp.endpoint = c.otlp.endpoint.replace('http://', 'https://');
    c.otlp.tls = { ca: server.cert, cert: client.cert, key: client.key, insecure: false };
  });
  await pipeline.forceCollectAndExport();
  await waitFor('one export', () => receiver.received.length === 1);
  assert.is(receiver.received[0]!.clientCn, 'carnx-test-agent');
  assert.is(receiver.received[0]!.headers['x-api-key'], CANARY);
});

test('https without a CA file trusts the system store (SSL_CERT_FILE here), not only bundled roots', async () => {
  const server = pem('system-store-server', 'carnx-test-internal-ca', 'IP:127.0.0.1');
  const store = join(dir, 'system-store.pem');
  writeFileSync(store, `${readFileSync(server.cert, 'utf8')}`);
  const receiver = new Receiver(
    http2.createSecureServer({ key: readFileSync(server.key), cert: readFileSync(server.cert) }),
  );
  const before = lines.length;
  const pipeline = await pipelineTo(
    receiver,
    (c) => {
      c.otlp.endpoint = c.otlp.endpoint.replace('http://', 'https://');
    },
    undefined,
    { SSL_CERT_FILE: store },
  );
  await pipeline.forceCollectAndExport();
  assert.is(pipeline.exportState(), 'exporting', 'the handshake trusted the CA from the system store');
  assert.is(receiver.received[0]?.headers['x-api-key'], CANARY);
  const started = lines.slice(before).map((l) => JSON.parse(l) as { msg: string; trustedRoots?: string });
  assert.is(started.find((l) => l.msg === 'exporting metrics over OTLP/gRPC')?.trustedRoots, store);

  // The store itself: SSL_CERT_FILE, else the first distribution bundle found, plus NODE_EXTRA_CA_CERTS; else none.
  const other = pem('extra-ca', 'carnx-test-extra-ca', 'DNS:extra.invalid');
  assert.is(systemRoots({ SSL_CERT_FILE: store }, [])?.source, store);
  const both = systemRoots({ NODE_EXTRA_CA_CERTS: other.cert }, [join(dir, 'absent.pem'), store]);
  assert.is(both?.source, store);
  assert.match(both?.pem.toString() ?? '', readFileSync(other.cert, 'utf8').trim());
  assert.is(systemRoots({}, [join(dir, 'absent.pem')]), null, "none found: gRPC uses Node's bundled roots");
  assert.throws(
    () => systemRoots({ SSL_CERT_FILE: join(dir, 'absent.pem') }, []),
    (err: Error) =>
      err.message === `SSL_CERT_FILE (otlp.tls.ca is empty): cannot read ${join(dir, 'absent.pem')}: not found`,
  );
});

test('header values from OTEL_EXPORTER_OTLP_[METRICS_]HEADERS are secrets too, even when otlp.headers replaced them', async () => {
  const receiver = new Receiver(http2.createServer());
  const generic = 'cnry-generic-5a1d';
  const metricsOnly = 'cnry metrics 77e0';
  const before = lines.length;
  const pipeline = await pipelineTo(
    receiver,
    (c) => {
      c.otlp.headers = { 'x-from-file': 'not-the-canary' }; // a config file's headers replace the OTEL layer
    },
    undefined,
    {
      OTEL_EXPORTER_OTLP_HEADERS: `x-team=${generic}`,
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: `x-metrics-key=${encodeURIComponent(metricsOnly)}`,
    },
  );
  receiver.failing = true;
  for (const echo of [generic, metricsOnly]) {
    receiver.echo = echo;
    await pipeline.forceCollectAndExport();
    receiver.failing = false;
    await pipeline.forceCollectAndExport(); // recover, so the next failure is logged
    receiver.failing = true;
  }
  const logged = lines
    .slice(before)
    .map((l) => JSON.parse(l) as { msg: string; error?: string; headerNames?: string[] });
  assert.equal(
    logged.filter((l) => l.msg.startsWith('metrics export failed')).map((l) => l.error),
    ['14 UNAVAILABLE: collector overloaded: key [redacted]', '14 UNAVAILABLE: collector overloaded: key [redacted]'],
  );
  assert.equal(logged.find((l) => l.headerNames)?.headerNames, ['x-from-file', 'x-metrics-key', 'x-team']);
  for (const line of lines) for (const secret of [generic, metricsOnly]) assert.not.match(line, secret);
});

test('unreadable TLS files and unusable headers: errors name the key, never a header value', () => {
  const base = loadConfig({ argv: ['--otlp-endpoint', 'https://127.0.0.1:4317'], env: {} });
  const missing = join(dir, 'no-such-ca.pem');
  const failure = (config: CarnxConfig): Error | undefined => {
    try {
      createOtlpExporter(config, logger);
    } catch (err) {
      return err as Error;
    }
    return undefined;
  };
  const caError = failure({ ...base, otlp: { ...base.otlp, tls: { ...base.otlp.tls, ca: missing } } });
  assert.is(caError?.message, `otlp.tls.ca: cannot read ${missing}: not found`);
  const headerError = failure({ ...base, otlp: { ...base.otlp, headers: { 'x-api-key': `${CANARY}\n` } } });
  assert.match(headerError?.message ?? '', 'otlp.headers: "x-api-key"');
  assert.not.match(headerError?.message ?? '', CANARY);
});

test.run();
