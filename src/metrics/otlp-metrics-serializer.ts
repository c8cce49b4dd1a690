// carnx's ExportMetricsServiceRequest encoder: ResourceMetrics straight to protobuf bytes, reusing what never changes.
import type { Attributes } from '@opentelemetry/api';
import type { IExportMetricsServiceResponse, ISerializer } from '@opentelemetry/otlp-transformer';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import type { Resource } from '@opentelemetry/resources';
import {
  DataPointType,
  type DataPoint,
  type MetricData,
  type MetricDescriptor,
  type ResourceMetrics,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import { AttributeCache, type EncodedAttributes } from './otlp-attribute-cache.js';
import { NUMBER_POINT_FIXED, Unsupported, dataTrailerSize, histogramPointSize, writeData } from './otlp-data-points.js';
import {
  WireWriter,
  encodeAttributes,
  fieldSize,
  isPlainTime,
  lenKey,
  stringFieldSize,
  varintKey,
  varintSize,
} from './otlp-wire.js';

/**
 * Field keys of opentelemetry-proto metrics/v1 (and collector/metrics/v1 for the request), in the order OTel's own
 * serializer writes them, so both produce the same bytes for the same batch (the unit test compares them).
 */
const F = {
  resourceMetrics: lenKey(1),
  resource: lenKey(1),
  resourceDropped: varintKey(2),
  scopeMetrics: lenKey(2),
  schemaUrl: lenKey(3),
  scope: lenKey(1),
  scopeName: lenKey(1),
  scopeVersion: lenKey(2),
  scopeDropped: varintKey(4),
  metric: lenKey(2),
  name: lenKey(1),
  description: lenKey(2),
  unit: lenKey(3),
  gauge: lenKey(5),
  sum: lenKey(7),
  histogram: lenKey(9),
} as const;
/** Attribute field numbers: NumberDataPoint 7, HistogramDataPoint 9, InstrumentationScope 3. */
const NUMBER_ATTRIBUTES = 7;
const HISTOGRAM_ATTRIBUTES = 9;
const SCOPE_ATTRIBUTES = 3;

/** One metric's sizes and attribute bytes, from the sizing pass to the writing pass. */
interface Plan {
  metric: MetricData;
  header: Buffer;
  dataKey: number;
  /** Body of the Sum, Gauge or Histogram message. */
  dataSize: number;
  /** Body of the Metric message. */
  size: number;
  /** Each point's attribute bytes, in point order. */
  attributes: EncodedAttributes[];
}

/**
 * An ISerializer for the OTel export delegate. Requests are encoded in two passes, sizes then bytes, into one buffer of
 * the exact size. What repeats from export to export is encoded once: the resource, each scope and metric header, and
 * the attributes of every point whose attribute object is frozen (carnx's series); a point then costs its times, its
 * value and a copy of those bytes. Covers gauges, sums and histograms of int or double points, without exemplars: all
 * carnx exports. Anything else (exponential histograms, times that are not plain) goes to OTel's serializer, and so
 * does decoding the response (partial success).
 */
export class OtlpMetricsSerializer implements ISerializer<ResourceMetrics, IExportMetricsServiceResponse> {
  private readonly numberAttributes = new AttributeCache(NUMBER_ATTRIBUTES);
  private readonly histogramAttributes = new AttributeCache(HISTOGRAM_ATTRIBUTES);
  private readonly resources = new WeakMap<Resource, Buffer>();
  private readonly scopes = new WeakMap<ScopeMetrics['scope'], { for: ScopeMetrics['scope']; bytes: Buffer }>();
  private readonly headers = new WeakMap<
    MetricDescriptor,
    { name: string; description: string; unit: string; bytes: Buffer }
  >();

  serializeRequest(request: ResourceMetrics): Uint8Array | undefined {
    try {
      return this.encode(request);
    } catch (err) {
      if (err instanceof Unsupported) return ProtobufMetricsSerializer.serializeRequest(request);
      throw err;
    }
  }

  deserializeResponse(data: Uint8Array): IExportMetricsServiceResponse {
    return ProtobufMetricsSerializer.deserializeResponse(data);
  }

  private encode(request: ResourceMetrics): Buffer {
    this.numberAttributes.beginExport();
    this.histogramAttributes.beginExport();
    const resource = this.resourceBytes(request.resource);
    const resourceSchema = request.resource.schemaUrl;
    const scopes = request.scopeMetrics.map((sm) => {
      const scope = this.scopeBytes(sm.scope);
      const plans = sm.metrics.map((m) => this.plan(m));
      let size = scope.length + plans.reduce((n, p) => n + fieldSize(p.size), 0);
      if (sm.scope.schemaUrl) size += stringFieldSize(sm.scope.schemaUrl);
      return { scopeMetrics: sm, scope, plans, size };
    });
    let size = resource.length + scopes.reduce((n, s) => n + fieldSize(s.size), 0);
    if (resourceSchema) size += stringFieldSize(resourceSchema);
    const w = new WireWriter(Buffer.allocUnsafe(fieldSize(size)));
    w.byte(F.resourceMetrics);
    w.varint(size);
    w.bytes(resource);
    for (const s of scopes) {
      w.byte(F.scopeMetrics);
      w.varint(s.size);
      w.bytes(s.scope);
      for (const plan of s.plans) writeMetric(w, plan);
      if (s.scopeMetrics.scope.schemaUrl) w.stringField(F.schemaUrl, s.scopeMetrics.scope.schemaUrl);
    }
    if (resourceSchema) w.stringField(F.schemaUrl, resourceSchema);
    if (w.pos !== w.buf.length) throw new Error(`OTLP encoder wrote ${w.pos} bytes of ${w.buf.length}`);
    return w.buf;
  }

  /** The Resource field; cached while the resource's attributes are settled (they cannot change then). */
  private resourceBytes(resource: Resource): Buffer {
    const hit = this.resources.get(resource);
    if (hit !== undefined) return hit;
    const attributes = encodeAttributes(resource.attributes, 1);
    const body = Buffer.concat([attributes, Buffer.from([F.resourceDropped, 0])]);
    const bytes = delimitedField(F.resource, body);
    if (!resource.asyncAttributesPending) this.resources.set(resource, bytes);
    return bytes;
  }

  /** The InstrumentationScope field; cached per scope object while its name and version stay those encoded. */
  private scopeBytes(
    scope: ScopeMetrics['scope'] & { attributes?: Attributes; droppedAttributesCount?: number },
  ): Buffer {
    const hit = this.scopes.get(scope);
    if (hit !== undefined && hit.for.name === scope.name && hit.for.version === scope.version) return hit.bytes;
    const dropped = scope.droppedAttributesCount;
    if (dropped && !(Number.isSafeInteger(dropped) && dropped > 0)) throw new Unsupported();
    const parts = [stringField(F.scopeName, scope.name)];
    if (scope.version) parts.push(stringField(F.scopeVersion, scope.version));
    if (scope.attributes) parts.push(encodeAttributes(scope.attributes, SCOPE_ATTRIBUTES));
    if (dropped) parts.push(varintField(F.scopeDropped, dropped));
    const bytes = delimitedField(F.scope, Buffer.concat(parts));
    if (scope.attributes === undefined && !dropped) this.scopes.set(scope, { for: { ...scope }, bytes });
    return bytes;
  }

  /** Name, description and unit; cached per descriptor object while they stay those encoded. */
  private header(d: MetricDescriptor): Buffer {
    const hit = this.headers.get(d);
    if (hit !== undefined && hit.name === d.name && hit.description === d.description && hit.unit === d.unit) {
      return hit.bytes;
    }
    const parts = [stringField(F.name, d.name)];
    if (d.description) parts.push(stringField(F.description, d.description));
    if (d.unit) parts.push(stringField(F.unit, d.unit));
    const bytes = Buffer.concat(parts);
    this.headers.set(d, { name: d.name, description: d.description, unit: d.unit, bytes });
    return bytes;
  }

  /** The sizing pass of one metric; throws Unsupported for what the writing pass cannot write. */
  private plan(metric: MetricData): Plan {
    const attributes: EncodedAttributes[] = new Array(metric.dataPoints.length);
    let dataSize = 0;
    let dataKey: number;
    if (metric.dataPointType === DataPointType.HISTOGRAM) {
      dataKey = F.histogram;
      metric.dataPoints.forEach((p, i) => {
        const encoded = this.histogramAttributes.get(p.attributes);
        attributes[i] = encoded;
        dataSize += fieldSize(histogramPointSize(p, encoded.bytes.length));
      });
    } else if (metric.dataPointType === DataPointType.SUM || metric.dataPointType === DataPointType.GAUGE) {
      dataKey = metric.dataPointType === DataPointType.SUM ? F.sum : F.gauge;
      const points = metric.dataPoints;
      for (let i = 0; i < points.length; i++) {
        const p = points[i] as DataPoint<number>;
        if (!isPlainTime(p.startTime) || !isPlainTime(p.endTime)) throw new Unsupported();
        const encoded = this.numberAttributes.get(p.attributes);
        attributes[i] = encoded;
        dataSize += fieldSize(NUMBER_POINT_FIXED + encoded.bytes.length);
      }
    } else {
      throw new Unsupported();
    }
    dataSize += dataTrailerSize(metric);
    const header = this.header(metric.descriptor);
    return { metric, header, dataKey, dataSize, size: header.length + fieldSize(dataSize), attributes };
  }
}

function writeMetric(w: WireWriter, plan: Plan): void {
  w.byte(F.metric);
  w.varint(plan.size);
  w.bytes(plan.header);
  w.byte(plan.dataKey);
  w.varint(plan.dataSize);
  writeData(w, plan.metric, plan.attributes);
}

function delimitedField(fieldKey: number, body: Buffer): Buffer {
  const w = new WireWriter(Buffer.allocUnsafe(fieldSize(body.length)));
  w.byte(fieldKey);
  w.varint(body.length);
  w.bytes(body);
  return w.buf;
}

function stringField(fieldKey: number, text: string): Buffer {
  const w = new WireWriter(Buffer.allocUnsafe(stringFieldSize(text)));
  w.stringField(fieldKey, text);
  return w.buf;
}

function varintField(fieldKey: number, value: number): Buffer {
  const w = new WireWriter(Buffer.allocUnsafe(1 + varintSize(value)));
  w.byte(fieldKey);
  w.varint(value);
  return w.buf;
}
