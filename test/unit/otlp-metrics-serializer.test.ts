// carnx's OTLP request encoder against OTel's: the same bytes for random batches of every shape, caches included.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValueType, type AttributeValue, type Attributes, type HrTime } from '@opentelemetry/api';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { emptyResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type DataPoint,
  type Histogram,
  type MetricData,
  type ResourceMetrics,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import protobuf from 'protobufjs';
import { AttributeCache } from '../../src/metrics/otlp-attribute-cache.js';
import { OtlpMetricsSerializer } from '../../src/metrics/otlp-metrics-serializer.js';
import { EXACT_INT, type ExactIntPoint } from '../../src/metrics/otlp-data-points.js';
import { encodeAttributes } from '../../src/metrics/otlp-wire.js';
import { prng } from '../fixtures/prng.js';

/** Random batches, with the values where encoders go wrong: beyond 2^53, at 2^63, negative, non-ASCII, empty. */
class Gen {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  string(): string {
    return this.pick([
      '',
      'eth0',
      'network.interface.name',
      'x'.repeat(200),
      'größe',
      '網路介面',
      'emoji 🚀',
      'lone \ud800 surrogate',
      `r${this.int(1e6)}`,
    ]);
  }
  integer(): number {
    return (
      this.pick([0, 1, 127, 128, 300, -1, -300, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1, 2 ** 53 + 2, 2 ** 60 + 2 ** 8]) *
      (this.chance(0.2) ? -1 : 1)
    );
  }
  number(): number {
    return this.pick([
      this.integer(),
      0.5,
      -1.25,
      Math.PI,
      2 ** 63,
      -(2 ** 63),
      2 ** 64,
      1e300,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -0,
    ]);
  }
  value(depth = 0): AttributeValue {
    const kind = this.int(depth > 1 ? 4 : 7);
    if (kind === 0) return this.string();
    if (kind === 1) return this.chance(0.5);
    if (kind === 2) return this.number();
    if (kind === 3) return this.integer();
    if (kind === 4)
      return Array.from({ length: this.int(4) }, () => this.pick([this.string(), this.number(), true])) as never;
    if (kind === 5) return new Uint8Array(Array.from({ length: this.int(5) }, () => this.int(256))) as never;
    // Nested objects and null/undefined are not AttributeValues, but the SDK passes on what users give it.
    return this.pick([{ a: this.string(), b: { c: this.number() } }, null, undefined]) as never;
  }
  attributes(): Attributes {
    const attrs: Attributes = {};
    for (let i = this.int(5); i > 0; i--) attrs[this.pick(['k', 'network.io.direction', 'ä', `k${i}`])] = this.value();
    return this.chance(0.5) ? Object.freeze(attrs) : attrs;
  }
  time(): HrTime {
    return [this.pick([0, 1, 1_700_000_000, 2 ** 32 + 7, 2 ** 33]), this.pick([0, 1, 999_999_999, this.int(1e9)])];
  }
  points<T>(value: () => T, shared: readonly Attributes[]): DataPoint<T>[] {
    const end = this.time();
    return Array.from({ length: this.int(6) }, () => ({
      attributes: this.chance(0.5) ? this.pick(shared) : this.attributes(),
      startTime: this.chance(0.5) ? end : this.time(),
      endTime: end,
      value: value(),
    }));
  }
  histogram(): Histogram {
    const boundaries = Array.from({ length: this.int(4) }, () => this.number());
    return {
      buckets: {
        boundaries,
        counts: Array.from({ length: boundaries.length + (boundaries.length > 0 ? 1 : 0) }, () => this.integer()),
      },
      count: Math.abs(this.integer()),
      sum: this.chance(0.7) ? this.number() : undefined,
      min: this.chance(0.3) ? this.number() : undefined,
      max: this.chance(0.3) ? this.number() : undefined,
    };
  }
  metric(shared: readonly Attributes[]): MetricData {
    const valueType = this.chance(0.6) ? ValueType.INT : ValueType.DOUBLE;
    const descriptor = {
      name: this.pick(['carnx.packets', 'system.network.io', 'ü']),
      description: this.pick(['', 'Frames received.', 'x'.repeat(300)]),
      unit: this.pick(['', 'By', '{packet}']),
      valueType,
    };
    const aggregationTemporality = this.pick([AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE]);
    const num = () => (valueType === ValueType.INT ? this.integer() : this.number());
    const kind = this.int(3);
    if (kind === 0) {
      return {
        descriptor,
        aggregationTemporality,
        dataPointType: DataPointType.SUM,
        isMonotonic: this.chance(0.5),
        dataPoints: this.points(num, shared),
      };
    }
    if (kind === 1) {
      return {
        descriptor,
        aggregationTemporality,
        dataPointType: DataPointType.GAUGE,
        dataPoints: this.points(num, shared),
      };
    }
    return {
      descriptor,
      aggregationTemporality,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: this.points(() => this.histogram(), shared),
    };
  }
  batch(): ResourceMetrics {
    const shared = Array.from({ length: 3 }, () => Object.freeze({ 'network.interface.name': this.string(), n: 1 }));
    const attrs = this.attributes();
    const resource = this.chance(0.2)
      ? emptyResource()
      : resourceFromAttributes(attrs, this.chance(0.3) ? { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' } : {});
    return {
      resource,
      scopeMetrics: Array.from(
        { length: this.int(4) },
        (): ScopeMetrics => ({
          scope: {
            name: this.pick(['carnx', 'carnx.kernel', '']),
            version: this.pick([undefined, '', '0.1.0']),
            ...(this.chance(0.3) ? { schemaUrl: 'https://example.com/schema' } : {}),
          },
          metrics: Array.from({ length: this.int(4) }, () => this.metric(shared)),
        }),
      ),
    };
  }
}

function otel(batch: ResourceMetrics): Buffer {
  return Buffer.from(ProtobufMetricsSerializer.serializeRequest(batch) ?? new Uint8Array());
}

function same(ours: Uint8Array | undefined, batch: ResourceMetrics, context: string): void {
  assert.ok(ours !== undefined, context);
  const theirs = otel(batch);
  if (Buffer.compare(Buffer.from(ours), theirs) !== 0) {
    assert.fixture(Buffer.from(ours).toString('hex'), theirs.toString('hex'), context);
  }
}

/** A request of one metric in one scope: the shape the hand-made cases below need. */
function oneMetric(
  scope: ScopeMetrics['scope'],
  metric: MetricData,
  resource: ResourceMetrics['resource'] = emptyResource(),
): ResourceMetrics {
  return { resource, scopeMetrics: [{ scope, metrics: [metric] }] };
}

/** A request of one monotonic integer sum in one scope. */
function oneSum(
  scope: ScopeMetrics['scope'],
  descriptor: { name: string; unit: string; description?: string },
  dataPoints: DataPoint<number>[],
  options: { resource?: ResourceMetrics['resource']; temporality?: AggregationTemporality } = {},
): ResourceMetrics {
  return oneMetric(
    scope,
    {
      descriptor: { description: '', ...descriptor, valueType: ValueType.INT },
      aggregationTemporality: options.temporality ?? AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints,
    },
    options.resource,
  );
}

test('random batches of every shape: the same bytes as the OTel serializer, first and second time (caches)', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const batch = new Gen(prng(seed)).batch();
    const serializer = new OtlpMetricsSerializer();
    same(serializer.serializeRequest(batch), batch, `seed ${seed}`);
    same(serializer.serializeRequest(batch), batch, `seed ${seed}, again`);
  }
});

test('one serializer across batches that share resource, scopes and attribute objects', () => {
  const serializer = new OtlpMetricsSerializer();
  const gen = new Gen(prng(7));
  const batch = gen.batch();
  for (let i = 0; i < 20; i++) {
    // New points, same objects underneath: what every export after the first looks like.
    const next: ResourceMetrics = {
      resource: batch.resource,
      scopeMetrics: batch.scopeMetrics.map((s) => ({ scope: s.scope, metrics: s.metrics.map(() => gen.metric([])) })),
    };
    same(serializer.serializeRequest(next), next, `round ${i}`);
  }
});

test('series that come and go: the same bytes throughout, and the cache forgets series unused for 64 exports', () => {
  const serializer = new OtlpMetricsSerializer();
  const series = Array.from({ length: 1000 }, (_, i) =>
    Object.freeze({ 'network.interface.name': `veth${i}`, 'network.io.direction': i % 2 ? 'receive' : 'transmit' }),
  );
  const batch = (from: number, count: number): ResourceMetrics =>
    oneSum(
      { name: 'carnx' },
      { name: 'carnx.packets', description: 'd', unit: '{packet}' },
      series.slice(from, from + count).map((attributes, i) => ({
        attributes,
        startTime: [1_700_000_000, i] as HrTime,
        endTime: [1_700_000_010, from] as HrTime,
        value: from * 1000 + i,
      })),
    );
  // Windows of 100 series sliding by 3 per export: entries die at the sweeps of exports 128 and 192, and at 192 the
  // dead bytes outweigh the live ones (a compaction).
  for (let e = 0; e < 200; e++) same(serializer.serializeRequest(batch(e * 3, 100)), batch(e * 3, 100), `export ${e}`);

  // Sweeps come every 64 exports and drop what the last 64 did not use.
  const cache = new AttributeCache(7);
  for (let e = 1; e <= 127; e++) {
    cache.beginExport();
    for (const a of series.slice(e === 1 ? 0 : 300, 400)) cache.get(a);
  }
  assert.is(cache.size, 400, 'at the sweep of export 64, the series of export 1 were 63 exports old');
  cache.beginExport(); // export 128: a sweep
  for (const a of series.slice(300, 400)) cache.get(a);
  assert.is(cache.size, 100, 'the 300 unused since export 1 are gone');
  for (const a of series.slice(300, 400)) {
    assert.equal(Buffer.from(cache.get(a).bytes), encodeAttributes(a, 7), 'kept bytes intact');
  }
});

test('an attribute object that is not frozen is encoded afresh: a change between exports is sent', () => {
  const serializer = new OtlpMetricsSerializer();
  const attributes: Attributes = { 'carnx.reason': 'EPERM' };
  const batch = (): ResourceMetrics =>
    oneSum({ name: 'carnx.agent' }, { name: 'carnx.agent.attach.failures', unit: '' }, [
      { attributes, startTime: [1, 0], endTime: [2, 0], value: 3 },
    ]);
  same(serializer.serializeRequest(batch()), batch(), 'first');
  attributes['carnx.reason'] = 'EINVAL';
  same(serializer.serializeRequest(batch()), batch(), 'after the change');
});

test('what the encoder does not cover goes to the OTel serializer: exponential histograms, odd times', () => {
  const serializer = new OtlpMetricsSerializer();
  const descriptor = { name: 'h', description: '', unit: '', valueType: ValueType.DOUBLE };
  const exponential = oneMetric(
    { name: 's' },
    {
      descriptor,
      aggregationTemporality: AggregationTemporality.DELTA,
      dataPointType: DataPointType.EXPONENTIAL_HISTOGRAM,
      dataPoints: [
        {
          attributes: {},
          startTime: [1, 0],
          endTime: [2, 0],
          value: {
            count: 3,
            sum: 6,
            scale: 2,
            zeroCount: 1,
            positive: { offset: -1, bucketCounts: [1, 1] },
            negative: { offset: 0, bucketCounts: [] },
          },
        },
      ],
    },
  );
  same(serializer.serializeRequest(exponential), exponential, 'exponential histogram');
  const oddTime = oneMetric(
    { name: 's' },
    {
      descriptor,
      aggregationTemporality: AggregationTemporality.DELTA,
      dataPointType: DataPointType.GAUGE,
      dataPoints: [{ attributes: {}, startTime: [1.5, 0], endTime: [2, 1e9], value: 1 }],
    },
  );
  same(serializer.serializeRequest(oddTime), oddTime, 'fractional seconds, a whole second of nanoseconds');
});

/** Enough of opentelemetry-proto (metrics v1, common v1) to read a sum back; field numbers per the spec. */
const REQUEST = protobuf
  .parse(`syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message InstrumentationScope { string name = 1; string version = 2; }
message NumberDataPoint { repeated KeyValue attributes = 7; fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3;
  oneof value { double as_double = 4; sfixed64 as_int = 6; } }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Metric { string name = 1; string description = 2; string unit = 3; Sum sum = 7; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }`)
  .root.lookupType('ExportMetricsServiceRequest');

test('protobufjs reads back exact int64 values beyond 2^53, times in ns and the attributes', () => {
  // Counters are u64 summed as bigint; the producer hands the SDK Number(total), which above 2^53 is a whole double.
  const values = [0, 2 ** 53 + 2, 2 ** 60 + 2 ** 8, 2 ** 63 - 1024, -5];
  const attributes = Object.freeze({ 'network.interface.name': 'eth0', 'network.io.direction': 'receive', n: 2 ** 60 });
  const batch = oneSum(
    { name: 'carnx', version: '0.1.0' },
    { name: 'carnx.bytes', description: 'Bytes.', unit: 'By' },
    values.map((value) => ({
      attributes,
      startTime: [1_700_000_000, 987_654_321] as HrTime,
      endTime: [2 ** 33, 999_999_999] as HrTime,
      value,
    })),
    { resource: resourceFromAttributes({ 'service.name': 'carnx' }), temporality: AggregationTemporality.DELTA },
  );
  const bytes = new OtlpMetricsSerializer().serializeRequest(batch);
  assert.ok(bytes !== undefined);
  const decoded = REQUEST.toObject(REQUEST.decode(bytes), { longs: String, defaults: true }) as {
    resourceMetrics: {
      resource: { attributes: { key: string }[] };
      scopeMetrics: {
        scope: { name: string; version: string };
        metrics: {
          name: string;
          unit: string;
          sum: {
            aggregationTemporality: number;
            isMonotonic: boolean;
            dataPoints: {
              asInt: string;
              startTimeUnixNano: string;
              timeUnixNano: string;
              attributes: { key: string; value: { stringValue?: string; intValue?: string } }[];
            }[];
          };
        }[];
      }[];
    }[];
  };
  const rm = decoded.resourceMetrics[0];
  const metric = rm?.scopeMetrics[0]?.metrics[0];
  assert.equal(rm?.resource.attributes[0]?.key, 'service.name');
  assert.equal(rm?.scopeMetrics[0]?.scope, { name: 'carnx', version: '0.1.0' });
  assert.is(metric?.name, 'carnx.bytes');
  assert.is(metric?.unit, 'By');
  assert.is(metric?.sum.aggregationTemporality, 1);
  assert.is(metric?.sum.isMonotonic, true);
  assert.equal(
    metric?.sum.dataPoints.map((p) => p.asInt),
    values.map((v) => BigInt(v).toString()),
  );
  const point = metric?.sum.dataPoints[0];
  assert.is(point?.startTimeUnixNano, '1700000000987654321');
  assert.is(point?.timeUnixNano, (2n ** 33n * 1_000_000_000n + 999_999_999n).toString());
  assert.equal(
    point?.attributes.map((a) => [a.key, a.value.stringValue ?? a.value.intValue]),
    [
      ['network.interface.name', 'eth0'],
      ['network.io.direction', 'receive'],
      ['n', (2n ** 60n).toString()],
    ],
  );
});

test('a point carrying its exact value (EXACT_INT) is sent exactly, to 2^63 - 1; the others as their number', () => {
  const exact = [(1n << 53n) + 1n, (1n << 60n) + 3n, (1n << 63n) - 1n];
  const withExact = (big: bigint): DataPoint<number> => {
    const p: ExactIntPoint = { attributes: {}, startTime: [1, 0], endTime: [2, 0], value: Number(big) };
    p[EXACT_INT] = big;
    return p;
  };
  const batch = oneSum({ name: 'carnx' }, { name: 'carnx.bytes', unit: 'By' }, [
    ...exact.map(withExact),
    { attributes: {}, startTime: [1, 0], endTime: [2, 0], value: 7 },
  ]);
  const bytes = new OtlpMetricsSerializer().serializeRequest(batch);
  assert.ok(bytes !== undefined);
  const decoded = REQUEST.toObject(REQUEST.decode(bytes), { longs: String }) as {
    resourceMetrics: { scopeMetrics: { metrics: { sum: { dataPoints: { asInt: string }[] } }[] }[] }[];
  };
  assert.equal(
    decoded.resourceMetrics[0]?.scopeMetrics[0]?.metrics[0]?.sum.dataPoints.map((p) => p.asInt),
    [...exact.map(String), '7'],
  );
  assert.is.not(String(Number(exact[0])), String(exact[0]), 'the number alone would not have been exact');
});

test('the response (partial success) is decoded as OTel decodes it', () => {
  const body = Buffer.concat([Buffer.from([0x0a, 13, 0x08, 3, 0x12, 9]), Buffer.from('bad point')]);
  assert.equal(
    new OtlpMetricsSerializer().deserializeResponse(body),
    ProtobufMetricsSerializer.deserializeResponse(body),
  );
});

test.run();
