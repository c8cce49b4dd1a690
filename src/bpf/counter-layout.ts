// The TypeScript mirror of xdp/carnx_counters.h: field order, enum values, and decoding of the summed counters.

/** Must equal CARNX_LAYOUT_VERSION in the header; it is part of every pin path. */
export const LAYOUT_VERSION = 1;

export type NetworkType = 'ipv4' | 'ipv6' | 'arp' | 'other';
export type Transport = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'other' | 'none';

export interface TrafficClass {
  /** enum carnx_class value and index into packets[] / bytes[]. */
  index: number;
  cName: string;
  network: NetworkType;
  transport: Transport;
}

/** enum carnx_class, in order. Every frame is counted in exactly one of these. */
export const TRAFFIC_CLASSES: readonly TrafficClass[] = [
  { index: 0, cName: 'CARNX_CLASS_IPV4_TCP', network: 'ipv4', transport: 'tcp' },
  { index: 1, cName: 'CARNX_CLASS_IPV4_UDP', network: 'ipv4', transport: 'udp' },
  { index: 2, cName: 'CARNX_CLASS_IPV4_ICMP', network: 'ipv4', transport: 'icmp' },
  { index: 3, cName: 'CARNX_CLASS_IPV4_OTHER', network: 'ipv4', transport: 'other' },
  { index: 4, cName: 'CARNX_CLASS_IPV4_NONE', network: 'ipv4', transport: 'none' },
  { index: 5, cName: 'CARNX_CLASS_IPV6_TCP', network: 'ipv6', transport: 'tcp' },
  { index: 6, cName: 'CARNX_CLASS_IPV6_UDP', network: 'ipv6', transport: 'udp' },
  { index: 7, cName: 'CARNX_CLASS_IPV6_ICMPV6', network: 'ipv6', transport: 'icmpv6' },
  { index: 8, cName: 'CARNX_CLASS_IPV6_OTHER', network: 'ipv6', transport: 'other' },
  { index: 9, cName: 'CARNX_CLASS_IPV6_NONE', network: 'ipv6', transport: 'none' },
  { index: 10, cName: 'CARNX_CLASS_ARP', network: 'arp', transport: 'none' },
  { index: 11, cName: 'CARNX_CLASS_OTHER', network: 'other', transport: 'none' },
];

/** enum carnx_tcp_flag: index is the bit position in the TCP flags byte. */
export const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;
export type TcpFlag = (typeof TCP_FLAGS)[number];

/** enum carnx_syn_kind: segments with SYN set, without and with ACK. */
export const SYN_KINDS = ['syn', 'syn_ack'] as const;

/** enum carnx_layer. */
export const MALFORMED_LAYERS = ['l2', 'l3', 'l4'] as const;
export type MalformedLayer = (typeof MALFORMED_LAYERS)[number];

/** CARNX_SIZE_BUCKET_BOUNDS: inclusive upper bounds in bytes; a last, unbounded bucket follows. */
export const SIZE_BUCKET_BOUNDS = [64, 127, 255, 511, 1023, 1518, 9000] as const;
/** CARNX_SIZE_BUCKET_COUNT: one bucket per bound, then the unbounded one. */
export const SIZE_BUCKET_COUNT = SIZE_BUCKET_BOUNDS.length + 1;

/** The size bucket a frame of `length` bytes is counted in, as the XDP program picks it. */
export function sizeBucketOf(length: number): number {
  const i = SIZE_BUCKET_BOUNDS.findIndex((bound) => length <= bound);
  return i === -1 ? SIZE_BUCKET_BOUNDS.length : i;
}

/** struct carnx_counters: each field is `count` consecutive u64s, in this order. */
export const COUNTER_FIELDS = [
  { cName: 'packets', count: TRAFFIC_CLASSES.length },
  { cName: 'bytes', count: TRAFFIC_CLASSES.length },
  { cName: 'tcp_flags', count: TCP_FLAGS.length },
  { cName: 'tcp_syn', count: SYN_KINDS.length },
  { cName: 'vlan_packets', count: 1 },
  { cName: 'malformed', count: MALFORMED_LAYERS.length },
  { cName: 'size_buckets', count: SIZE_BUCKET_COUNT },
] as const;

type CounterFieldName = (typeof COUNTER_FIELDS)[number]['cName'];

export const COUNTERS_WORDS = COUNTER_FIELDS.reduce((n, f) => n + f.count, 0);
export const COUNTERS_SIZE = COUNTERS_WORDS * 8;

/** One interface's counters, summed over CPUs. */
export interface InterfaceCounters {
  /** By TRAFFIC_CLASSES index. */
  packets: bigint[];
  bytes: bigint[];
  /** By TCP_FLAGS index. */
  tcpFlags: bigint[];
  /** By SYN_KINDS index. */
  tcpSyn: bigint[];
  vlanPackets: bigint;
  /** By MALFORMED_LAYERS index. */
  malformed: bigint[];
  /** By size bucket, SIZE_BUCKET_COUNT of them. */
  sizeBuckets: bigint[];
}

/** Splits the summed u64 words of struct carnx_counters into named fields. */
export function decodeCounters(words: readonly bigint[]): InterfaceCounters {
  if (words.length !== COUNTERS_WORDS) {
    throw new Error(`counter value has ${words.length} u64 fields, layout v${LAYOUT_VERSION} has ${COUNTERS_WORDS}`);
  }
  const fields = new Map<CounterFieldName, bigint[]>();
  let at = 0;
  for (const f of COUNTER_FIELDS) {
    fields.set(f.cName, words.slice(at, at + f.count));
    at += f.count;
  }
  // Every name is set above (the length check guarantees the slices are full).
  const field = (name: CounterFieldName): bigint[] => fields.get(name) ?? [];
  return {
    packets: field('packets'),
    bytes: field('bytes'),
    tcpFlags: field('tcp_flags'),
    tcpSyn: field('tcp_syn'),
    vlanPackets: field('vlan_packets')[0] ?? 0n,
    malformed: field('malformed'),
    sizeBuckets: field('size_buckets'),
  };
}

export function emptyCounters(): InterfaceCounters {
  return decodeCounters(new Array<bigint>(COUNTERS_WORDS).fill(0n));
}

export function sum(values: readonly bigint[]): bigint {
  return values.reduce((a, b) => a + b, 0n);
}

/** struct carnx_meta: the agent's state for one interface (the program never reads it). */
export interface CountingMeta {
  countingSinceUnixNs: bigint;
  layoutVersion: number;
  ifindex: number;
  /** Delta temporality: when the last successful export was taken, 0n if none yet. */
  deltaExportedUntilUnixNs: bigint;
  /** Delta temporality: the counters as that export saw them. */
  deltaExported: InterfaceCounters;
}

const META_HEADER_SIZE = 24;
export const META_SIZE = META_HEADER_SIZE + COUNTERS_SIZE;

function flatten(counters: InterfaceCounters): bigint[] {
  return [
    ...counters.packets,
    ...counters.bytes,
    ...counters.tcpFlags,
    ...counters.tcpSyn,
    counters.vlanPackets,
    ...counters.malformed,
    ...counters.sizeBuckets,
  ];
}

export function encodeMeta(meta: CountingMeta): Buffer {
  const buf = Buffer.alloc(META_SIZE);
  buf.writeBigUInt64LE(meta.countingSinceUnixNs, 0);
  buf.writeUInt32LE(meta.layoutVersion, 8);
  buf.writeUInt32LE(meta.ifindex, 12);
  buf.writeBigUInt64LE(meta.deltaExportedUntilUnixNs, 16);
  for (const [i, word] of flatten(meta.deltaExported).entries()) buf.writeBigUInt64LE(word, META_HEADER_SIZE + i * 8);
  return buf;
}

export function decodeMeta(buf: Buffer): CountingMeta {
  const words = Array.from({ length: COUNTERS_WORDS }, (_, i) => buf.readBigUInt64LE(META_HEADER_SIZE + i * 8));
  return {
    countingSinceUnixNs: buf.readBigUInt64LE(0),
    layoutVersion: buf.readUInt32LE(8),
    ifindex: buf.readUInt32LE(12),
    deltaExportedUntilUnixNs: buf.readBigUInt64LE(16),
    deltaExported: decodeCounters(words),
  };
}
