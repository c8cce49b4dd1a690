// The data points of the OTLP metrics encoder: NumberDataPoint and HistogramDataPoint, sized and written.
import { ValueType } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import type { EncodedAttributes } from './otlp-attribute-cache.js';
import { type WireWriter, fieldSize, i64Key, isPlainTime, lenKey, varintKey } from './otlp-wire.js';

/** A batch the encoder does not cover (an exponential histogram, an odd time): OTel's serializer takes it whole. */
export class Unsupported extends Error {}

/** Field keys of Sum/Gauge/Histogram and their points (opentelemetry-proto metrics/v1), in OTel's writing order. */
const F = {
  dataPoint: lenKey(1),
  temporality: varintKey(2),
  monotonic: varintKey(3),
  startTime: i64Key(2),
  time: i64Key(3),
  asDouble: i64Key(4),
  asInt: i64Key(6),
  count: i64Key(4),
  histogramSum: i64Key(5),
  bucketCounts: lenKey(6),
  explicitBounds: lenKey(7),
  min: i64Key(11),
  max: i64Key(12),
} as const;

/**
 * Where an integer point also carries its value as a bigint: the producer sets it when the number is not exact (above
 * 2^53), and the encoder writes it instead of the number. The OTel SDK passes points through untouched; OTel's own
 * serializer (the fallback) ignores it and sends the number.
 */
export const EXACT_INT: unique symbol = Symbol('carnx.exactInt');
/** An integer data point that may carry its exact value. */
export type ExactIntPoint = DataPoint<number> & { [EXACT_INT]?: bigint };

/** A NumberDataPoint without its attributes: start and end times and the value, each a key and 8 bytes. */
export const NUMBER_POINT_FIXED = 27;

export function histogramPointSize(p: DataPoint<Histogram>, attributesSize: number): number {
  if (!isPlainTime(p.startTime) || !isPlainTime(p.endTime)) throw new Unsupported();
  const h = p.value;
  let size = 27 + attributesSize; // times and count
  if (h.sum !== undefined) size += 9;
  if (h.buckets.counts.length > 0) size += fieldSize(8 * h.buckets.counts.length);
  if (h.buckets.boundaries.length > 0) size += fieldSize(8 * h.buckets.boundaries.length);
  if (h.min !== undefined) size += 9;
  if (h.max !== undefined) size += 9;
  return size;
}

/** OTLP's AggregationTemporality: 1 delta, 2 cumulative, 0 (left out) otherwise. */
function temporalityOf(metric: MetricData): number {
  if (metric.aggregationTemporality === AggregationTemporality.DELTA) return 1;
  return metric.aggregationTemporality === AggregationTemporality.CUMULATIVE ? 2 : 0;
}

/** The bytes after a Sum's or Histogram's points: temporality (unless unspecified) and, for a sum, is_monotonic. */
export function dataTrailerSize(metric: MetricData): number {
  let size = metric.dataPointType !== DataPointType.GAUGE && temporalityOf(metric) !== 0 ? 2 : 0;
  if (metric.dataPointType === DataPointType.SUM && metric.isMonotonic) size += 2;
  return size;
}

/** The body of a Sum, Gauge or Histogram message: its points (with their attribute bytes), temporality, monotonicity. */
export function writeData(w: WireWriter, metric: MetricData, attributes: readonly EncodedAttributes[]): void {
  if (metric.dataPointType === DataPointType.HISTOGRAM) {
    metric.dataPoints.forEach((p, i) => {
      writeHistogramPoint(w, p, attributes[i] as EncodedAttributes);
    });
  } else if (metric.dataPointType === DataPointType.SUM || metric.dataPointType === DataPointType.GAUGE) {
    const isInt = metric.descriptor.valueType === ValueType.INT;
    const points = metric.dataPoints;
    for (let i = 0; i < points.length; i++) {
      const p = points[i] as ExactIntPoint;
      const attrs = (attributes[i] as EncodedAttributes).bytes;
      w.byte(F.dataPoint);
      w.varint(NUMBER_POINT_FIXED + attrs.length);
      w.byte(F.startTime);
      w.time(p.startTime);
      w.byte(F.time);
      w.time(p.endTime);
      if (isInt) {
        w.byte(F.asInt);
        const exact = p[EXACT_INT];
        if (exact === undefined) w.int64(p.value);
        else w.int64Exact(exact);
      } else {
        w.byte(F.asDouble);
        w.double(p.value);
      }
      w.bytes(attrs);
    }
  }
  const temporality = metric.dataPointType === DataPointType.GAUGE ? 0 : temporalityOf(metric);
  if (temporality !== 0) {
    w.byte(F.temporality);
    w.byte(temporality);
  }
  if (metric.dataPointType === DataPointType.SUM && metric.isMonotonic) {
    w.byte(F.monotonic);
    w.byte(1);
  }
}

function writeHistogramPoint(w: WireWriter, p: DataPoint<Histogram>, attributes: EncodedAttributes): void {
  const h = p.value;
  w.byte(F.dataPoint);
  w.varint(histogramPointSize(p, attributes.bytes.length));
  w.byte(F.startTime);
  w.time(p.startTime);
  w.byte(F.time);
  w.time(p.endTime);
  w.byte(F.count);
  w.uint64(h.count);
  if (h.sum !== undefined) {
    w.byte(F.histogramSum);
    w.double(h.sum);
  }
  const { counts, boundaries } = h.buckets;
  if (counts.length > 0) {
    w.byte(F.bucketCounts);
    w.varint(8 * counts.length);
    for (const c of counts) w.uint64(c);
  }
  if (boundaries.length > 0) {
    w.byte(F.explicitBounds);
    w.varint(8 * boundaries.length);
    for (const b of boundaries) w.double(b);
  }
  w.bytes(attributes.bytes);
  if (h.min !== undefined) {
    w.byte(F.min);
    w.double(h.min);
  }
  if (h.max !== undefined) {
    w.byte(F.max);
    w.double(h.max);
  }
}
