// The kernel's statistics of the counted interfaces as OpenTelemetry's system.network.* metrics, from one table.
import { ValueType, type Attributes, type Meter, type ObservableCounter } from '@opentelemetry/api';
import type { Logger } from '../log/logger.js';
import type { KernelInterfaceStats, KernelStatsSource, LinkCounters } from '../reader/kernel-stats.js';
import { ATTR, toNumber } from './counter-instruments.js';

/** One metric of the system semantic conventions, and where each direction's value comes from. */
export interface SystemNetworkMetric {
  name: string;
  unit: string;
  description: string;
  receive: (rx: LinkCounters) => bigint;
  transmit: (tx: LinkCounters) => bigint;
}

/**
 * The names and meanings of the collector's hostmetrics network scraper, which reads /proc/net/dev: its `drop` column
 * is rx_dropped + rx_missed_errors. Attributes follow the current conventions: network.interface.name and
 * network.io.direction (the scraper still says device and direction).
 */
export const SYSTEM_NETWORK_METRICS: readonly SystemNetworkMetric[] = [
  {
    name: 'system.network.packets',
    unit: '{packet}',
    description: 'Packets the kernel counted on the interface (rx_packets, tx_packets).',
    receive: (rx) => rx.packets,
    transmit: (tx) => tx.packets,
  },
  {
    name: 'system.network.io',
    unit: 'By',
    description: 'Bytes the kernel counted on the interface (rx_bytes, tx_bytes).',
    receive: (rx) => rx.bytes,
    transmit: (tx) => tx.bytes,
  },
  {
    name: 'system.network.errors',
    unit: '{error}',
    description: 'Errors the kernel counted on the interface (rx_errors, tx_errors).',
    receive: (rx) => rx.errors,
    transmit: (tx) => tx.errors,
  },
  {
    name: 'system.network.dropped',
    unit: '{packet}',
    description:
      'Packets dropped without an error on the interface (rx_dropped + rx_missed_errors, tx_dropped): the drop ' +
      'column of /proc/net/dev.',
    // The reader's receive `dropped` is already rx_dropped + rx_missed_errors (the drop column).
    receive: (rx) => rx.dropped,
    transmit: (tx) => tx.dropped,
  },
];

/** One exported series of an interface: a metric in one direction. */
interface Series {
  instrument: ObservableCounter;
  direction: 'receive' | 'transmit';
  read: (s: KernelInterfaceStats) => bigint;
}

/**
 * Observable counters over the kernel's totals, one batch callback per collection. The SDK gives every series the
 * start time of its first observation (not when the interface was created); with delta temporality it turns the
 * totals into differences. `fromFirstSight` (for delta) observes the totals since carnx first saw each interface
 * instead: otherwise the SDK's first delta would carry the interface's whole history as if it had just happened.
 */
export class SystemNetworkInstruments {
  private readonly baselines: Baselines | undefined;
  private callbackFailing = false;
  /**
   * Each counted interface's two attribute sets, made once and reused while it stays counted: a collection observes
   * eight series per interface. Rebuilt from the interfaces of each collection, so it never outgrows them.
   */
  private attributes = new Map<string, Record<Series['direction'], Attributes>>();

  constructor(
    private readonly source: KernelStatsSource,
    private readonly logger: Logger,
    options: { fromFirstSight: boolean },
  ) {
    this.baselines = options.fromFirstSight ? new Baselines() : undefined;
  }

  /** Creates the instruments on `meter`; call once per MeterProvider. */
  bind(meter: Meter): void {
    // valueType INT: without it the SDK exports these counts as doubles.
    const series: Series[] = SYSTEM_NETWORK_METRICS.flatMap((m) => {
      const instrument = meter.createObservableCounter(m.name, {
        valueType: ValueType.INT,
        unit: m.unit,
        description: m.description,
      });
      return [
        { instrument, direction: 'receive', read: (s: KernelInterfaceStats) => m.receive(s.rx) },
        { instrument, direction: 'transmit', read: (s: KernelInterfaceStats) => m.transmit(s.tx) },
      ] satisfies Series[];
    });
    meter.addBatchObservableCallback(
      (result) => {
        try {
          const stats = this.source();
          const attributes = new Map<string, Record<Series['direction'], Attributes>>();
          for (const s of stats) {
            const attrs = this.attributes.get(s.name) ?? attributesOf(s.name);
            attributes.set(s.name, attrs);
            const totals = series.map((one) => one.read(s));
            // Without a baseline (cumulative), the totals themselves.
            const base = this.baselines?.of(s.name, totals);
            series.forEach((one, i) => {
              const total = totals[i] as bigint;
              result.observe(one.instrument, toNumber(total - (base?.[i] ?? 0n)), attrs[one.direction]);
            });
          }
          this.attributes = attributes;
          this.baselines?.keepOnly(stats.map((s) => s.name));
          this.callbackFailing = false;
        } catch (err) {
          // Never throw from a callback: the other instruments of this collection must still be exported.
          const error = (err as Error)?.message ?? String(err);
          if (!this.callbackFailing)
            this.logger.warn({ error }, 'reading the kernel interface statistics failed; logged once until it works');
          this.callbackFailing = true;
        }
      },
      [...new Set(series.map((one) => one.instrument))],
    );
  }
}

/** Frozen: the OTLP encoder keeps the bytes of frozen attribute objects and reuses them at every export. */
function attributesOf(name: string): Record<Series['direction'], Attributes> {
  return {
    receive: Object.freeze({ [ATTR.interfaceName]: name, [ATTR.ioDirection]: 'receive' }),
    transmit: Object.freeze({ [ATTR.interfaceName]: name, [ATTR.ioDirection]: 'transmit' }),
  };
}

/**
 * Each interface's totals when it was first seen. A counter that went down means the device was re-created: it starts
 * again from there, like an interface seen for the first time (the SDK reads the drop as a reset and reports 0).
 */
class Baselines {
  private readonly first = new Map<string, bigint[]>();

  /** The baseline to subtract from `totals`, one per series (the same length). */
  of(name: string, totals: bigint[]): bigint[] {
    const seen = this.first.get(name);
    const base = seen === undefined || totals.some((v, i) => v < (seen[i] ?? 0n)) ? totals : seen;
    this.first.set(name, base);
    return base;
  }

  /**
   * An interface missing from a collection starts again from the next sight: its unobserved traffic is left out
   * rather than reported later as one delta.
   */
  keepOnly(names: string[]): void {
    const kept = new Set(names);
    for (const name of this.first.keys()) if (!kept.has(name)) this.first.delete(name);
  }
}
