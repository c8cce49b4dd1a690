// The table of carnx's counter metrics: name, unit, description, and how each is read from one interface's counters.
import type { Attributes } from '@opentelemetry/api';
import type { Histogram } from '@opentelemetry/sdk-metrics';
import {
  MALFORMED_LAYERS,
  SIZE_BUCKET_BOUNDS,
  SIZE_BUCKET_COUNT,
  SYN_KINDS,
  TCP_FLAGS,
  TRAFFIC_CLASSES,
  sum,
  type InterfaceCounters,
} from '../bpf/counter-layout.js';

/** Attribute names. network.* are OTel semantic conventions (incubating), copied to avoid a dependency for six strings. */
export const ATTR = {
  interfaceName: 'network.interface.name',
  ioDirection: 'network.io.direction',
  networkType: 'network.type',
  transport: 'network.transport',
  tcpFlag: 'tcp.flag',
  synKind: 'carnx.tcp.syn.kind',
  malformedLayer: 'carnx.malformed.layer',
} as const;

/** XDP only sees received frames. */
export const DIRECTION = 'receive';

/**
 * One metric. Its cumulative state is a vector of u64 words (`read`); `values` turns a vector (cumulative, or the
 * difference of two for delta) into the values of its points, one per entry of `attributes`. Keeping every metric a
 * plain word vector lets the producer compute deltas and detect resets the same way for sums and the histogram.
 */
interface CounterInstrumentBase {
  name: string;
  unit: string;
  description: string;
  read(counters: InterfaceCounters): bigint[];
  /**
   * Each point's own attributes, in point order (the producer adds the interface name and direction). Fixed for the
   * process: the producer builds each series' attribute objects from them once and reuses them.
   */
  attributes: readonly Attributes[];
}

export interface SumInstrument extends CounterInstrumentBase {
  kind: 'sum';
  values(words: readonly bigint[]): number[];
}

export interface HistogramInstrument extends CounterInstrumentBase {
  kind: 'histogram';
  values(words: readonly bigint[]): Histogram[];
}

export type CounterInstrument = SumInstrument | HistogramInstrument;

/**
 * bigint -> number at the last moment. Exact up to 2^53 (9.0e15): that is 2 years of packets at 150 Mpps, but only
 * 8.3 days of bytes at a sustained 100 Gbit/s. Above it the number is the nearest double, and the producer hands the
 * exact word to carnx's OTLP encoder beside it (EXACT_INT in otlp-data-points.ts), so the wire stays exact to 2^63.
 * Delta values are differences taken in bigint, so they stay exact.
 */
export function toNumber(value: bigint): number {
  return Number(value);
}

/**
 * A monotonic sum with a fixed set of series: every series is exported from the first collection, zeros included,
 * so users never see series appear later.
 */
function monotonicSum(
  name: string,
  unit: string,
  description: string,
  series: readonly Attributes[],
  read: (c: InterfaceCounters) => bigint[],
): SumInstrument {
  return {
    kind: 'sum',
    name,
    unit,
    description,
    read,
    attributes: series,
    // read() and the series table have the same length by construction; a missing word would be a bug, shown as 0.
    values: (words) => series.map((_, i) => toNumber(words[i] ?? 0n)),
  };
}

const classSeries: Attributes[] = TRAFFIC_CLASSES.map((c) => ({
  [ATTR.networkType]: c.network,
  [ATTR.transport]: c.transport,
}));
const BUCKETS = SIZE_BUCKET_COUNT;
/** Every histogram point's bucket boundaries: one array, shared by all points (nothing writes to it). */
const BOUNDARIES: number[] = [...SIZE_BUCKET_BOUNDS];

/** Every counter metric, in export order. Each point also carries the interface name and direction (the producer adds them). */
export const COUNTER_INSTRUMENTS: readonly CounterInstrument[] = [
  monotonicSum(
    'carnx.packets',
    '{packet}',
    'Frames received, by network and transport protocol; every frame is counted in exactly one series.',
    classSeries,
    (c) => c.packets,
  ),
  monotonicSum(
    'carnx.bytes',
    'By',
    'Bytes received, by network and transport protocol: whole frame lengths as XDP sees them, Ethernet header and ' +
      'VLAN tags included, FCS excluded.',
    classSeries,
    (c) => c.bytes,
  ),
  monotonicSum(
    'carnx.tcp.flags',
    '{segment}',
    'TCP segments received with this flag set; a segment with several flags counts once under each.',
    TCP_FLAGS.map((f) => ({ [ATTR.tcpFlag]: f.toLowerCase() })),
    (c) => c.tcpFlags,
  ),
  monotonicSum(
    'carnx.tcp.syn',
    '{segment}',
    'TCP segments received with SYN set: syn without ACK (connection attempts), syn_ack with ACK (answers). ' +
      'carnx.tcp.flags counts a SYN-ACK under both flags, so only this metric tells them apart.',
    SYN_KINDS.map((k) => ({ [ATTR.synKind]: k })),
    (c) => c.tcpSyn,
  ),
  monotonicSum(
    'carnx.vlan.packets',
    '{packet}',
    'Frames received with at least one 802.1Q or 802.1ad tag still present when XDP sees them (NICs with RX VLAN ' +
      'offload may strip tags first).',
    [{}],
    (c) => [c.vlanPackets],
  ),
  monotonicSum(
    'carnx.malformed.packets',
    '{packet}',
    'Frames whose header at this layer was truncated or invalid; they are still counted in carnx.packets.',
    MALFORMED_LAYERS.map((l) => ({ [ATTR.malformedLayer]: l })),
    (c) => c.malformed,
  ),
  {
    kind: 'histogram',
    name: 'carnx.packet.size',
    unit: 'By',
    description:
      'Distribution of received frame lengths (as counted in carnx.bytes), from buckets counted in the kernel.',
    // Bucket counts, then the exact byte total: one vector, so the delta and reset logic is shared with the sums.
    read: (c) => [...c.sizeBuckets, sum(c.bytes)],
    attributes: [{}],
    values: (words) => {
      const counts = words.slice(0, BUCKETS);
      // Every frame lands in exactly one bucket, so this is the packet total; taking it from the buckets keeps the
      // point self-consistent (count = sum of bucket counts) even if a read races with counting.
      const count = sum(counts);
      return [
        {
          buckets: { boundaries: BOUNDARIES, counts: counts.map(toNumber) },
          count: toNumber(count),
          sum: toNumber(words[BUCKETS] ?? 0n),
          // The kernel keeps no min/max; leaving them out is allowed by OTLP.
        },
      ];
    },
  },
];
