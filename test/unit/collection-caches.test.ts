// What collection keeps from one export to the next: per-CPU sums stay exact, attribute caches hold only live series.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Attributes, BatchObservableResult, Meter, Observable } from '@opentelemetry/api';
import type { DataPoint, MetricData } from '@opentelemetry/sdk-metrics';
import { emptyCounters } from '../../src/bpf/counter-layout.js';
import { sumPerCpuU64 } from '../../src/bpf/per-cpu-sum.js';
import { createLogger } from '../../src/log/logger.js';
import { CounterProducer } from '../../src/metrics/counter-producer.js';
import { SystemNetworkInstruments } from '../../src/metrics/system-network-instruments.js';
import type { KernelInterfaceStats } from '../../src/reader/kernel-stats.js';
import type { InterfaceSnapshot } from '../../src/reader/interface-snapshot.js';

const logger = createLogger('silent');
const S = 1_000_000_000n;

/** A small deterministic generator, so a failure can be replayed. */
function* words(seed: number): Generator<bigint> {
  let x = BigInt(seed) | 1n;
  for (;;) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffff_ffff_ffff_ffffn;
    yield x;
  }
}

test('sumPerCpuU64 equals adding the u64s as bigints: extreme values, 256 CPUs, padded stride, unaligned buffer', () => {
  const cpus = 256;
  const fields = 5;
  const stride = 48; // 40 bytes of fields, 8 of padding that must not be added
  const raw = Buffer.alloc(cpus * stride);
  const gen = words(7);
  const want = new Array<bigint>(fields).fill(0n);
  for (let cpu = 0; cpu < cpus; cpu++) {
    for (let i = 0; i < fields; i++) {
      // Field 0 all ones (2^64 - 1 on every CPU), field 1 only high halves, the rest pseudo-random.
      const w = i === 0 ? 0xffff_ffff_ffff_ffffn : i === 1 ? 0xffff_ffff_0000_0000n : (gen.next().value as bigint);
      raw.writeBigUInt64LE(w, cpu * stride + i * 8);
      want[i] = (want[i] as bigint) + w;
    }
    raw.writeBigUInt64LE(0xdead_beefn, cpu * stride + 40);
  }
  assert.equal(sumPerCpuU64(raw, cpus, stride, fields), want);
  assert.is(want[0], 256n * 0xffff_ffff_ffff_ffffn, 'beyond 2^64: no wrap, no rounding');
  const unaligned = Buffer.alloc(raw.length + 1).subarray(1);
  raw.copy(unaligned);
  assert.equal(sumPerCpuU64(unaligned, cpus, stride, fields), want, 'a buffer at an odd offset');
  assert.throws(() => sumPerCpuU64(raw, cpus + 1, stride, fields), /cannot hold/);
  // An odd number of CPUs (the last one has no partner in the two-at-a-time loop).
  const three = raw.subarray(0, 3 * stride);
  const first3 = [0, 1, 2].map((cpu) =>
    Array.from({ length: fields }, (_, i) => raw.readBigUInt64LE(cpu * stride + i * 8)),
  );
  assert.equal(
    sumPerCpuU64(three, 3, stride, fields),
    Array.from({ length: fields }, (_, i) => first3.reduce((n, cpu) => n + (cpu[i] as bigint), 0n)),
  );
});

/** One interface's snapshot in one direction, counting since `since` seconds. */
function snapshot(name: string, since: bigint, packets: bigint): InterfaceSnapshot {
  const counters = emptyCounters();
  counters.packets[0] = packets;
  return { name, ifindex: 1, direction: 'receive', hook: 'xdp-native', countingSinceUnixNs: since * S, counters };
}

/** The carnx.packets points of one collection, by interface name. */
async function packetPoints(producer: CounterProducer): Promise<Map<string, DataPoint<number>[]>> {
  const { resourceMetrics } = await producer.collect();
  const metric = resourceMetrics.scopeMetrics[0]?.metrics.find((m) => m.descriptor.name === 'carnx.packets');
  const out = new Map<string, DataPoint<number>[]>();
  for (const p of (metric as MetricData | undefined)?.dataPoints ?? []) {
    const name = String(p.attributes['network.interface.name']);
    out.set(name, [...(out.get(name) ?? []), p as DataPoint<number>]);
  }
  return out;
}

test('the producer reuses a live series’ attribute objects and forgets a series missing from a collection', async () => {
  let snapshots = [snapshot('eth0', 10n, 5n), snapshot('eth1', 10n, 7n)];
  let now = 100n * S;
  const producer = new CounterProducer({
    source: () => snapshots,
    logger,
    packageVersion: '1.0.0',
    temporality: 'delta',
    now: () => now,
  });
  const first = await packetPoints(producer);
  assert.equal(first.get('eth0')?.[0]?.attributes, {
    'network.interface.name': 'eth0',
    'network.io.direction': 'receive',
    'network.type': 'ipv4',
    'network.transport': 'tcp',
  });
  now += 10n * S;
  const second = await packetPoints(producer);
  assert.ok(second.get('eth0')?.[0]?.attributes === first.get('eth0')?.[0]?.attributes, 'the same object again');
  assert.is.not(second.get('eth0')?.[0], first.get('eth0')?.[0], 'points themselves are new');

  // eth1 goes away for one collection, then a new eth1 (counting since later) appears under the same name.
  snapshots = [snapshot('eth0', 10n, 5n)];
  now += 10n * S;
  assert.equal([...(await packetPoints(producer)).keys()], ['eth0']);
  snapshots = [snapshot('eth0', 10n, 5n), snapshot('eth1', 125n, 3n)];
  now += 10n * S;
  const back = await packetPoints(producer);
  const eth1 = back.get('eth1')?.[0];
  assert.ok(eth1 !== undefined);
  assert.ok(eth1.attributes !== first.get('eth1')?.[0]?.attributes, 'not kept while missing: made afresh');
  assert.equal(eth1.attributes, first.get('eth1')?.[0]?.attributes, 'with the same content');
  // Fresh counting state too: the new interface's whole count since it started, not a difference to the old one.
  assert.is(eth1.value, 3);
  assert.equal(eth1.startTime, [125, 0]);

  // Many interfaces come and go: none of them outlives its last collection.
  for (let round = 0; round < 50; round++) {
    snapshots = Array.from({ length: 20 }, (_, i) => snapshot(`churn${round}-${i}`, 10n, 1n));
    now += S;
    await packetPoints(producer);
  }
  snapshots = [snapshot('churn0-0', 10n, 1n)];
  now += S;
  const lastRound = await packetPoints(producer);
  assert.equal([...lastRound.keys()], ['churn0-0']);
});

/** The batch callback SystemNetworkInstruments registers, driven by hand; records each observation's attributes. */
function boundKernelInstruments(source: () => KernelInterfaceStats[]): () => Attributes[] {
  let callback: ((result: BatchObservableResult) => void) | undefined;
  const meter = {
    createObservableCounter: (name: string) => ({ name }),
    addBatchObservableCallback: (cb: (result: BatchObservableResult) => void) => {
      callback = cb;
    },
  } as unknown as Meter;
  new SystemNetworkInstruments(source, logger, { fromFirstSight: false }).bind(meter);
  return () => {
    const seen: Attributes[] = [];
    callback?.({ observe: (_: Observable, _v: number, attributes?: Attributes) => seen.push(attributes ?? {}) });
    return seen;
  };
}

const stats = (name: string): KernelInterfaceStats => ({
  name,
  rx: { packets: 1n, bytes: 2n, errors: 3n, dropped: 4n },
  tx: { packets: 5n, bytes: 6n, errors: 7n, dropped: 8n },
});

test('system.network.*: one attribute object per interface and direction while counted, made afresh after a gap', () => {
  let names = ['eth0', 'eth1'];
  const collect = boundKernelInstruments(() => names.map(stats));
  const first = collect();
  assert.is(first.length, 16, '4 metrics x 2 directions x 2 interfaces');
  const eth0 = first.filter((a) => a['network.interface.name'] === 'eth0');
  assert.equal(
    eth0.map((a) => a['network.io.direction']),
    ['receive', 'transmit', 'receive', 'transmit', 'receive', 'transmit', 'receive', 'transmit'],
  );
  assert.is(new Set(eth0).size, 2, 'every metric shares the two objects');
  const second = collect();
  assert.ok(
    second.every((a, i) => a === first[i]),
    'the same objects at the next collection',
  );
  names = ['eth0'];
  collect();
  names = ['eth0', 'eth1'];
  const back = collect();
  const eth1Before = first.find((a) => a['network.interface.name'] === 'eth1');
  const eth1After = back.find((a) => a['network.interface.name'] === 'eth1');
  assert.ok(eth1After !== eth1Before, 'eth1 was dropped while missing');
  assert.equal(eth1After, eth1Before);
});

test.run();
