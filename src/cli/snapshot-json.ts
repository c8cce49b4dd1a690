// `carnx snapshot --json`: the pinned counters in the exporter's metric names and attributes (schema in README).
import type { Attributes } from '@opentelemetry/api';
import { ATTR, COUNTER_INSTRUMENTS } from '../metrics/counter-instruments.js';
import type { PinnedCounters } from '../reader/pinned-counters.js';

/** Bumped only when a field changes meaning or goes away; new fields may appear in any version. */
export const SNAPSHOT_SCHEMA_VERSION = 1;

export interface SnapshotSumPoint {
  attributes: Attributes;
  /** Cumulative since startTimeUnixNano; the number the exporter sends (exact up to 2^53). */
  value: number;
}

export interface SnapshotHistogramPoint {
  attributes: Attributes;
  count: number;
  sum: number;
  /** One count per bucket: explicitBounds.length + 1 of them, the last unbounded. */
  bucketCounts: number[];
  explicitBounds: number[];
}

export type SnapshotPoint = (SnapshotSumPoint | SnapshotHistogramPoint) & { startTimeUnixNano: string };

export interface SnapshotMetric {
  name: string;
  unit: string;
  kind: 'sum' | 'histogram';
  dataPoints: SnapshotPoint[];
}

export interface SnapshotJson {
  schemaVersion: number;
  bpffsPath: string;
  /** When the maps were read, ns since the epoch as a decimal string (OTLP JSON spells 64-bit integers so). */
  timeUnixNano: string;
  /** What was read, one entry per interface and direction: where it is counted and since when. */
  interfaces: Array<{
    [ATTR.interfaceName]: string;
    [ATTR.ioDirection]: string;
    /** The hook (xdp-native, xdp-generic, tc-ingress, tc-egress), or null when it cannot be told (device gone). */
    hook: string | null;
    /** 0 when the device went away; its last counts are still pinned. */
    ifindex: number;
    startTimeUnixNano: string;
  }>;
  /** COUNTER_INSTRUMENTS in export order; every point carries the interface name and direction, as exported. */
  metrics: SnapshotMetric[];
  /** Directions whose pins could not be read: left out of metrics, never shown as zeros. */
  unread: Array<{ [ATTR.interfaceName]: string; [ATTR.ioDirection]: string; reason: string }>;
}

export function snapshotJson(bpffsPath: string, read: PinnedCounters): SnapshotJson {
  return {
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    bpffsPath,
    timeUnixNano: read.readAtUnixNs.toString(),
    interfaces: read.readings.map((r) => ({
      [ATTR.interfaceName]: r.ifname,
      [ATTR.ioDirection]: r.direction,
      hook: r.hook ?? null,
      ifindex: r.ifindex,
      startTimeUnixNano: r.countingSinceUnixNs.toString(),
    })),
    metrics: COUNTER_INSTRUMENTS.map((instrument) => ({
      name: instrument.name,
      unit: instrument.unit,
      kind: instrument.kind,
      dataPoints: read.readings.flatMap((r): SnapshotPoint[] => {
        const common = {
          startTimeUnixNano: r.countingSinceUnixNs.toString(),
          iface: { [ATTR.interfaceName]: r.ifname, [ATTR.ioDirection]: r.direction },
        };
        const words = instrument.read(r.counters);
        if (instrument.kind === 'sum') {
          return instrument.values(words).map((value, i) => ({
            attributes: { ...common.iface, ...instrument.attributes[i] },
            startTimeUnixNano: common.startTimeUnixNano,
            value,
          }));
        }
        return instrument.values(words).map((value, i) => ({
          attributes: { ...common.iface, ...instrument.attributes[i] },
          startTimeUnixNano: common.startTimeUnixNano,
          count: value.count,
          sum: value.sum ?? 0,
          bucketCounts: value.buckets.counts,
          explicitBounds: value.buckets.boundaries,
        }));
      }),
    })),
    unread: read.unread.map((u) => ({
      [ATTR.interfaceName]: u.ifname,
      [ATTR.ioDirection]: u.direction,
      reason: u.reason,
    })),
  };
}
