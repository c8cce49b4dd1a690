// A MetricProducer for the kernel counters: one SnapshotSource read per collection, as cumulative or delta points.
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type MetricData,
  type MetricProducer,
  type ResourceMetrics,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import type { Direction, InterfaceSnapshot, SnapshotSource } from '../reader/interface-snapshot.js';
import type { InterfaceCounters } from '../bpf/counter-layout.js';
import type { Logger } from '../log/logger.js';
import { ATTR, COUNTER_INSTRUMENTS, type CounterInstrument } from './counter-instruments.js';
import { EXACT_INT, type ExactIntPoint } from './otlp-data-points.js';

export type Temporality = 'cumulative' | 'delta';

export interface CounterProducerOptions {
  source: SnapshotSource;
  logger: Logger;
  /** carnx's version, the instrumentation scope version. */
  packageVersion: string;
  temporality: Temporality;
  /** Wall clock in ns since the epoch, the clock countingSinceUnixNs comes from. Tests pass a fake. */
  now?: () => bigint;
  /** Delta: how long the baseline of an interface missing from exported collections is kept (default 10 min). */
  forgetAfterMs?: number;
  /**
   * Delta: called for each interface and direction of a successfully exported collection with the counters it
   * carried, so they can be kept beside the pins; a restarted agent then starts from them (snapshot.deltaExported)
   * instead of resending.
   */
  onDeltaExported?: (name: string, direction: Direction, counters: InterfaceCounters, untilUnixNs: bigint) => void;
}

/** The words of every COUNTER_INSTRUMENTS entry for one interface and direction, cumulative since countingSinceNs. */
interface Reading {
  name: string;
  direction: Direction;
  countingSinceNs: bigint;
  words: bigint[][];
  counters: InterfaceCounters;
  /** What an earlier agent process exported last, used when this process has no baseline yet. */
  persisted?: Baseline;
}
/** Delta: the reading last exported successfully, and when it was taken; the next point starts there. */
interface Baseline extends Reading {
  endNs: bigint;
}
/** The last read of a released attachment, exported in every collection until one of them arrives. */
interface Final extends Reading {
  /** The end of the first collection that carried it; dropped after forgetAfterMs if no export ever succeeds. */
  firstSentNs?: bigint;
}
/** What one collection read, kept until the exporter reports whether it arrived (delta baselines, finals). */
interface Pending {
  endNs: bigint;
  /** By seriesKey. */
  readings: Map<string, Reading>;
  /** The finals it carried. */
  finals: Final[];
}
/** One interface's points in one direction for one collection: attributes, the interval's start and the values. */
interface Series {
  /** By instrument, then point: the series' attribute objects (SeriesAttributes). */
  attributes: SeriesAttributes;
  startTime: HrTime;
  words: bigint[][];
}
/**
 * Every point attribute object of one interface and direction, by instrument then point: the interface name and
 * direction, then the instrument's own. Made once per series and reused while the series is exported.
 */
type SeriesAttributes = readonly (readonly Attributes[])[];
/** What every point of one instrument shares, whichever collection it is in. */
type MetricShape = Pick<MetricData, 'descriptor' | 'aggregationTemporality'>;

/** Collections whose fate is unknown, kept at most; older ones can no longer advance the baseline anyway. */
const MAX_PENDING = 8;

/**
 * Delta keeps a baseline per interface that only a successful export advances (exportSucceeded), so after failed
 * exports the next successful one carries everything since the last success. Collections are numbered and only a
 * newer collection moves the baseline, so a late success of an older one cannot roll it back. The exporter wrapper
 * (ReportingExporter) keeps at most one export of counter points in flight: a collection exported while another is
 * still running goes without its counter points (withoutCounters, exportFailed) and the next one covers its interval.
 * Exactly-once while every export gets a definite answer (success, or a failure the collector did not take in), however
 * slow the collector. At-least-once where the answer is unknown: a timed-out export (DEADLINE_EXCEEDED after
 * otlp.timeoutMs) counts as failed although the collector may have taken it in, and an agent killed between the
 * collector's acceptance and onDeltaExported resends from the persisted baseline. Either way the re-sent interval
 * starts at the same time as the one the collector may hold (same series, same start time), and nothing is lost.
 */
export class CounterProducer implements MetricProducer {
  readonly temporality: Temporality;
  private readonly opts: CounterProducerOptions;
  private readonly now: () => bigint;
  private readonly collectionIds = new WeakMap<ScopeMetrics, number>();
  private readonly pending = new Map<number, Pending>();
  private readonly baselines = new Map<string, Baseline>();
  /** Released attachments' last reads not yet delivered, oldest first. */
  private finals: Final[] = [];
  private lastId = 0;
  private committedId = 0;
  private failedCollections = 0;
  /** The scope of every collection (each collection still gets its own ScopeMetrics, its identity for the exporter). */
  private readonly scope: ScopeMetrics['scope'];
  /** By COUNTER_INSTRUMENTS index. */
  private readonly shapes: readonly MetricShape[];
  /**
   * The attributes of the series in the last collection, by seriesKey. Each collection keeps only its own series, so
   * the cache never holds more than one collection's worth, and a series that skipped a collection starts afresh.
   */
  private attributeCache = new Map<string, SeriesAttributes>();

  constructor(options: CounterProducerOptions) {
    this.opts = options;
    this.temporality = options.temporality;
    this.now = options.now ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.scope = { name: 'carnx', version: options.packageVersion };
    // The exporter's temporality preference does not touch producer data: each point says its own temporality.
    const aggregationTemporality =
      this.temporality === 'delta' ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE;
    this.shapes = COUNTER_INSTRUMENTS.map(({ name, unit, description }) => ({
      descriptor: { name, unit, description, valueType: ValueType.INT },
      aggregationTemporality,
    }));
  }

  /** Never throws: a failed read is logged once per failure burst and returned in `errors`, with no points. */
  async collect(): Promise<CollectionResult> {
    let snapshots: InterfaceSnapshot[];
    try {
      snapshots = this.opts.source();
    } catch (err) {
      if (this.failedCollections++ === 0) {
        this.opts.logger.warn(
          { error: (err as Error)?.message ?? String(err) },
          'reading the counters failed; further failures are not logged until a read succeeds',
        );
      }
      return { resourceMetrics: resourceMetrics([]), errors: [err] };
    }
    if (this.failedCollections > 0) {
      this.opts.logger.info({ failedCollections: this.failedCollections }, 'reading the counters recovered');
      this.failedCollections = 0;
    }
    const id = ++this.lastId;
    const endNs = this.now();
    const { readings, finals } = this.readingsOf(snapshots, endNs);
    if (readings.size === 0) {
      this.attributeCache.clear();
      return { resourceMetrics: resourceMetrics([]), errors: [] };
    }
    if (this.temporality === 'delta' || finals.length > 0) this.remember(id, { endNs, readings, finals });
    const attributes = new Map<string, SeriesAttributes>();
    const series: Series[] = [];
    for (const [key, reading] of readings) {
      const cached = this.attributeCache.get(key) ?? seriesAttributes(reading.name, reading.direction);
      attributes.set(key, cached);
      const { startNs, words } = this.interval(key, reading, endNs);
      series.push({ attributes: cached, startTime: toHrTime(startNs), words });
    }
    this.attributeCache = attributes;
    const endTime = toHrTime(endNs);
    const scope: ScopeMetrics = {
      scope: this.scope,
      metrics: COUNTER_INSTRUMENTS.map((instrument, i) => this.metricData(instrument, i, series, endTime)),
    };
    this.collectionIds.set(scope, id);
    return { resourceMetrics: resourceMetrics([scope]), errors: [] };
  }

  /**
   * The collection a batch came from. The reader concatenates producers' ScopeMetrics objects into the batch it exports
   * (by reference), so the exporter wrapper finds ours by identity. Undefined for batches without counter points.
   */
  collectionIdOf(metrics: ResourceMetrics): number | undefined {
    for (const scope of metrics.scopeMetrics) {
      const id = this.collectionIds.get(scope);
      if (id !== undefined) return id;
    }
    return undefined;
  }

  /** The batch without this producer's scopes: the counter points of a collection that is not to be exported. */
  withoutCounters(metrics: ResourceMetrics): ResourceMetrics {
    return { ...metrics, scopeMetrics: metrics.scopeMetrics.filter((s) => !this.collectionIds.has(s)) };
  }

  /**
   * This collection's readings by series: the oldest final of each series, then the live series without one (a live
   * series whose interface was re-created under the same name waits for the next collection: its counts are
   * cumulative, nothing is lost, and one collection never holds two points of one series).
   */
  private readingsOf(
    snapshots: readonly InterfaceSnapshot[],
    endNs: bigint,
  ): { readings: Map<string, Reading>; finals: Final[] } {
    for (const s of snapshots) if (s.final) this.finals.push(readingOf(s));
    const forgetNs = this.forgetNs();
    const expired = this.finals.filter((f) => f.firstSentNs !== undefined && endNs - f.firstSentNs > forgetNs);
    for (const f of expired) {
      this.opts.logger.warn(
        { interface: f.name, direction: f.direction },
        'the final counts of a released interface were never exported; dropped',
      );
    }
    this.finals = this.finals.filter((f) => !expired.includes(f));
    const readings = new Map<string, Reading>();
    const finals: Final[] = [];
    for (const f of this.finals) {
      if (readings.has(seriesKey(f))) continue;
      f.firstSentNs ??= endNs;
      readings.set(seriesKey(f), f);
      finals.push(f);
    }
    for (const s of snapshots) if (!s.final && !readings.has(seriesKey(s))) readings.set(seriesKey(s), readingOf(s));
    return { readings, finals };
  }

  private forgetNs(): bigint {
    return BigInt(this.opts.forgetAfterMs ?? 600_000) * 1_000_000n;
  }

  /**
   * The collection arrived: delta points start from it from now on, and the finals it carried are done. Older pending
   * collections are dropped.
   */
  exportSucceeded(id: number): void {
    const done = this.pending.get(id);
    for (const key of this.pending.keys()) if (key <= id) this.pending.delete(key);
    if (done === undefined) return;
    this.finals = this.finals.filter((f) => !done.finals.includes(f));
    if (this.temporality !== 'delta' || id <= this.committedId) return;
    this.committedId = id;
    for (const [key, reading] of done.readings) {
      this.baselines.set(key, { ...reading, persisted: undefined, endNs: done.endNs });
      // A final's counters belong to a released attachment: not to whatever now counts under that name.
      if (done.finals.includes(reading)) continue;
      try {
        this.opts.onDeltaExported?.(reading.name, reading.direction, reading.counters, done.endNs);
      } catch (err) {
        this.opts.logger.warn(
          { interface: reading.name, direction: reading.direction, error: (err as Error).message },
          'could not keep the exported delta baseline',
        );
      }
    }
    // An interface missing from a successful export is not exported; its baseline is kept a while so a transient read
    // failure does not make it resend its totals, then dropped (a re-created interface has a new countingSince anyway).
    const forgetNs = this.forgetNs();
    for (const [key, baseline] of this.baselines) {
      if (!done.readings.has(key) && done.endNs - baseline.endNs > forgetNs) this.baselines.delete(key);
    }
  }

  /** The collection did not arrive (or its fate is unknown): the next one covers its interval again. */
  exportFailed(id: number): void {
    this.pending.delete(id);
  }

  private remember(id: number, pending: Pending): void {
    this.pending.set(id, pending);
    for (const key of this.pending.keys()) if (this.pending.size > MAX_PENDING) this.pending.delete(key);
  }

  /** A point's interval and values: since counting started (cumulative, first delta, reset) or since the baseline. */
  private interval(key: string, reading: Reading, endNs: bigint): { startNs: bigint; words: bigint[][] } {
    const base = this.temporality === 'delta' ? (this.baselines.get(key) ?? reading.persisted) : undefined;
    // A new countingSince or a counter that went down means the interface's counters were re-created: start over.
    // A baseline of another shape cannot be subtracted either (so the `?? 0n` below is never taken).
    const reset =
      base === undefined ||
      base.countingSinceNs !== reading.countingSinceNs ||
      !sameShape(base.words, reading.words) ||
      reading.words.some((words, i) => words.some((w, j) => w < (base.words[i]?.[j] ?? 0n)));
    const startNs = reset ? reading.countingSinceNs : base.endNs;
    const words = reset
      ? reading.words
      : reading.words.map((ws, i) => ws.map((w, j) => w - (base.words[i]?.[j] ?? 0n)));
    // OTLP wants start <= end; a wall clock stepped back must not produce an inverted interval.
    return { startNs: startNs < endNs ? startNs : endNs, words };
  }

  private metricData(
    instrument: CounterInstrument,
    index: number,
    series: readonly Series[],
    endTime: HrTime,
  ): MetricData {
    const shape = this.shapes[index] as MetricShape;
    if (instrument.kind === 'histogram') {
      const histogramPoints = dataPoints(series, index, instrument.values, endTime, false);
      return { ...shape, dataPointType: DataPointType.HISTOGRAM, dataPoints: histogramPoints };
    }
    const points = dataPoints(series, index, instrument.values, endTime, true);
    return { ...shape, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: points };
  }
}

function sameShape(a: readonly (readonly bigint[])[], b: readonly (readonly bigint[])[]): boolean {
  return a.length === b.length && a.every((words, i) => words.length === b[i]?.length);
}

/**
 * One instrument's points for every interface, each with the interface's attributes and interval. A sum's values are
 * its words one to one: where a value is past 2^53, where a number is no longer exact, the point also carries the
 * word itself for carnx's OTLP encoder (EXACT_INT).
 */
function dataPoints<T>(
  series: readonly Series[],
  index: number,
  values: (words: readonly bigint[]) => T[],
  endTime: HrTime,
  wordPerValue: boolean,
): DataPoint<T>[] {
  const points: DataPoint<T>[] = [];
  for (const s of series) {
    const attributes = s.attributes[index] ?? [];
    const words = s.words[index] ?? [];
    const vs = values(words);
    // One value per attribute set, by construction of the instrument table.
    for (let j = 0; j < vs.length; j++) {
      const point: DataPoint<T> = {
        attributes: attributes[j] ?? {},
        startTime: s.startTime,
        endTime,
        value: vs[j] as T,
      };
      if (wordPerValue && !Number.isSafeInteger(vs[j])) (point as ExactIntPoint)[EXACT_INT] = words[j];
      points.push(point);
    }
  }
  return points;
}

/** Frozen: the OTLP encoder keeps the bytes of frozen attribute objects and reuses them at every export. */
function seriesAttributes(name: string, direction: Direction): SeriesAttributes {
  return COUNTER_INSTRUMENTS.map((instrument) =>
    instrument.attributes.map((own) =>
      Object.freeze({ [ATTR.interfaceName]: name, [ATTR.ioDirection]: direction, ...own }),
    ),
  );
}

/** Series are per interface and direction; a name cannot contain '/', so the key is unambiguous. */
function seriesKey(s: { name: string; direction: Direction }): string {
  return `${s.name}/${s.direction}`;
}

function readingOf(snapshot: InterfaceSnapshot): Reading {
  const countingSinceNs = snapshot.countingSinceUnixNs;
  const wordsOf = (counters: InterfaceCounters) => COUNTER_INSTRUMENTS.map((i) => i.read(counters));
  const prior = snapshot.deltaExported;
  const persisted = prior && {
    name: snapshot.name,
    direction: snapshot.direction,
    countingSinceNs,
    words: wordsOf(prior.counters),
    counters: prior.counters,
    endNs: prior.untilUnixNs,
  };
  return {
    name: snapshot.name,
    direction: snapshot.direction,
    countingSinceNs,
    words: wordsOf(snapshot.counters),
    counters: snapshot.counters,
    ...(persisted ? { persisted } : {}),
  };
}

/** The reader keeps the SDK's resource and takes only scopeMetrics from producers: this resource is a placeholder. */
function resourceMetrics(scopeMetrics: ScopeMetrics[]): ResourceMetrics {
  return { resource: emptyResource(), scopeMetrics };
}

export function toHrTime(ns: bigint): HrTime {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}
