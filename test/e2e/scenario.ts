// What the e2e tests share: clean-up that always runs, a quiet veth pair, known traffic, and the exported counters read back.
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MALFORMED_LAYERS,
  SYN_KINDS,
  TCP_FLAGS,
  TRAFFIC_CLASSES,
  emptyCounters,
  type InterfaceCounters,
} from '../../src/bpf/counter-layout.js';
import { AgentProcess, type TestBpffs, agentArgs } from '../fixtures/agent-process.js';
import { bySeries, lastPoints, type Point, type TestCollector } from '../fixtures/collector.js';
import { ETH_P, TCP, arp, icmpv6Echo, ipv4, ipv6, tcp, udp, type Frame } from '../fixtures/frames.js';
import { ip, VethPair } from '../fixtures/netns.js';
import { writePcap, type Capture } from '../fixtures/witness.js';

export const TRAFFIC = fileURLToPath(new URL('../../../test/fixtures/traffic.mjs', import.meta.url));
export const HOST_V6 = 'fe80::1';
export const PEER_V6 = 'fe80::2';

/** Clean-up steps run in reverse order, every one even if another fails: for after.each hooks. */
export class Cleanups {
  readonly #steps: Array<() => unknown> = [];

  add<T>(thing: T, step: (thing: T) => unknown): T {
    this.#steps.push(() => step(thing));
    return thing;
  }

  async run(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await step();
      } catch {
        // keep cleaning
      }
    }
  }
}

/** Polls `check` until it returns a value other than undefined/false; fails with `what` after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result !== undefined && result !== false) return result;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * A veth pair whose namespace side is down, so nothing reaches the host side until `up()`: counting, capture and the
 * kernel's statistics can all start from the same silence.
 */
export function quietPair(cleanups: Cleanups, tag: string, options: { mtu?: number } = {}): VethPair {
  const pair = cleanups.add(new VethPair(tag), (p) => p.destroy()).create(options);
  pair.exec('ip', ['link', 'set', pair.peer, 'down']);
  return pair;
}

/** Brings the namespace side up with IPv6 link-local addresses (no DAD, usable at once; the kernel still sends ND/MLD/RS). */
export function up(pair: VethPair): void {
  pair.exec('ip', ['link', 'set', pair.peer, 'up']);
  ip('addr', 'replace', `${HOST_V6}/64`, 'dev', pair.host, 'nodad');
  pair.exec('ip', ['addr', 'replace', `${PEER_V6}/64`, 'dev', pair.peer, 'nodad']);
}

export function macOf(ifname: string, pair?: VethPair): Buffer {
  const text = pair
    ? pair.exec('cat', [`/sys/class/net/${ifname}/address`])
    : readFileSync(`/sys/class/net/${ifname}/address`, 'utf8');
  return Buffer.from(text.trim().replace(/:/g, ''), 'hex');
}

export function startAgent(
  cleanups: Cleanups,
  bpffs: TestBpffs,
  include: string,
  extra: string[],
  env: NodeJS.ProcessEnv = {},
): AgentProcess {
  return cleanups.add(new AgentProcess(agentArgs(bpffs, include, extra), env), (a) => a.stop('SIGKILL'));
}

export function sendUdp(pair: VethPair, to: string, count: number, size: number): void {
  pair.exec('node', [TRAFFIC, 'udp', to, '9', String(count), String(size)]);
}

export function ping(pair: VethPair, to: string, count: number): void {
  pair.exec('ping', ['-c', String(count), '-i', '0.05', '-W', '2', '-q', to]);
}

/** `count` TCP connections from the namespace to a listener on the host side at `address`, each sending `size` bytes. */
export async function tcpConnections(pair: VethPair, address: string, count: number, size: number): Promise<void> {
  const server = net.createServer((s) => s.resume().on('end', () => s.end()));
  const host = address.startsWith('fe80:') ? `${address}%${pair.host}` : address;
  const target = address.startsWith('fe80:') ? `${address}%${pair.peer}` : address;
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  try {
    await pair.run('node', [
      TRAFFIC,
      'tcp',
      target,
      String((server.address() as net.AddressInfo).port),
      String(count),
      String(size),
    ]);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** UDP datagrams of `size` bytes from the namespace in bursts of `burst` until stopped; counts what was sent. */
export function steadyTraffic(
  pair: VethPair,
  burst: number,
  size: number,
  pauseMs: number,
): { sent: () => number; stop: () => Promise<number> } {
  let running = true;
  let sent = 0;
  const loop = (async () => {
    while (running) {
      await pair.run('node', [TRAFFIC, 'udp', pair.hostAddress, '9', String(burst), String(size)]);
      sent += burst;
      await sleep(pauseMs);
    }
  })();
  return {
    sent: () => sent,
    stop: async () => {
      running = false;
      await loop;
      return sent;
    },
  };
}

/**
 * Tagged frames from the namespace side. This kernel has no 802.1Q support (CONFIG_VLAN_8021Q is off), so there is
 * no VLAN sub-interface to send from: the frames are built like a VLAN sub-interface would send them (the tag inline,
 * as with tx-vlan offload off), addressed between the pair's own MAC and link-local addresses, and replayed with
 * tcpreplay. The host has no VLAN device either and drops them after counting.
 */
export function taggedFrames(pair: VethPair): Frame[] {
  const Q = [ETH_P.vlan];
  const QINQ = [ETH_P.qinq, ETH_P.vlan];
  const frames = [
    ...Array.from({ length: 7 }, () => ipv4('802.1Q udp', udp(200), { vlanTags: Q })),
    ...Array.from({ length: 3 }, () => ipv4('802.1Q udp, large', udp(1200), { vlanTags: Q })),
    ...Array.from({ length: 4 }, () => ipv4('QinQ tcp SYN', tcp(TCP.SYN), { vlanTags: QINQ })),
    ...Array.from({ length: 2 }, () => ipv4('802.1Q tcp PSH-ACK', tcp(TCP.PSH | TCP.ACK, 40), { vlanTags: Q })),
    ...Array.from({ length: 5 }, () => ipv6('QinQ udp', udp(30), { vlanTags: QINQ })),
    ...Array.from({ length: 3 }, () => ipv6('802.1Q icmpv6 echo', icmpv6Echo(), { vlanTags: Q })),
    ...Array.from({ length: 2 }, () => arp('802.1Q arp', { vlanTags: Q })),
  ];
  const [hostMac, peerMac] = [macOf(pair.host), macOf(pair.peer, pair)];
  const v4 = (a: string) => Buffer.from(a.split('.').map(Number));
  const v6 = (last: number) => Buffer.from([0xfe, 0x80, ...Array(13).fill(0), last]);
  for (const f of frames) {
    hostMac.copy(f.bytes, 0);
    peerMac.copy(f.bytes, 6);
    const l3 = 14 + 4 * f.vlanTags;
    if (f.network === 'ipv4') {
      v4(pair.peerAddress).copy(f.bytes, l3 + 12);
      v4(pair.hostAddress).copy(f.bytes, l3 + 16);
    } else if (f.network === 'ipv6') {
      v6(2).copy(f.bytes, l3 + 8);
      v6(1).copy(f.bytes, l3 + 24);
    }
  }
  return frames;
}

/** Sends frames from the namespace side, every one (tcpreplay's own count is checked). */
export function replay(pair: VethPair, frames: Frame[], dir: string): void {
  const file = join(dir, `replay-${Date.now()}.pcap`);
  writePcap(
    file,
    frames.map((f) => f.bytes),
  );
  const out = pair.exec('tcpreplay', ['-q', '--topspeed', '-i', pair.peer, file]);
  const sent = /Actual: (\d+) packets/.exec(out)?.[1];
  if (Number(sent) !== frames.length) throw new Error(`tcpreplay sent ${sent} of ${frames.length}: ${out}`);
}

/** carnx's counters as exported, plus the histogram's own count and sum. */
export interface ExportedCounters extends InterfaceCounters {
  histogramCount: bigint;
  histogramSum: number;
}

/** Counters of one interface rebuilt from exported points: the last of each series (cumulative) or their sum (delta). */
export function exportedCounters(
  points: readonly Point[],
  ifname: string,
  temporality: 'cumulative' | 'delta',
): ExportedCounters {
  const mine = points.filter((p) => p.attributes['network.interface.name'] === ifname);
  const c: ExportedCounters = { ...emptyCounters(), histogramCount: 0n, histogramSum: 0 };
  const chosen = temporality === 'cumulative' ? [...lastPoints(mine).values()] : mine;
  for (const p of chosen) {
    const a = p.attributes;
    const v = p.int ?? 0n;
    switch (p.metric) {
      case 'carnx.packets':
      case 'carnx.bytes': {
        const i = TRAFFIC_CLASSES.findIndex(
          (k) => k.network === a['network.type'] && k.transport === a['network.transport'],
        );
        if (i < 0) throw new Error(`unknown class in ${JSON.stringify(a)}`);
        (p.metric === 'carnx.packets' ? c.packets : c.bytes)[i]! += v;
        break;
      }
      case 'carnx.tcp.flags':
        c.tcpFlags[TCP_FLAGS.findIndex((f) => f.toLowerCase() === a['tcp.flag'])]! += v;
        break;
      case 'carnx.tcp.syn':
        c.tcpSyn[SYN_KINDS.indexOf(a['carnx.tcp.syn.kind'] as never)]! += v;
        break;
      case 'carnx.vlan.packets':
        c.vlanPackets += v;
        break;
      case 'carnx.malformed.packets':
        c.malformed[MALFORMED_LAYERS.indexOf(a['carnx.malformed.layer'] as never)]! += v;
        break;
      case 'carnx.packet.size':
        p.bucketCounts!.forEach((n, i) => {
          c.sizeBuckets[i]! += n;
        });
        c.histogramCount += p.count ?? 0n;
        c.histogramSum += p.sum ?? 0;
        break;
      default:
        break;
    }
  }
  return c;
}

export interface Settled {
  rx: { packets: bigint; bytes: bigint };
  points: Point[];
  /** The capture's frames at that moment, copied to a file of their own for tcpdump -r. */
  witnessFile?: string;
}

/**
 * A quiet moment: the kernel's rx statistics do not change while the collector receives two collections taken after
 * the first look and (with a capture) while the capture file is copied. Everything read then describes the same
 * frames. Retries until `timeoutMs` (IPv6 router solicitations come every 4 s for a while after link-up).
 */
export async function settle(
  pair: VethPair,
  collector: TestCollector,
  ifname: string,
  options: { capture?: Capture; dir?: string; timeoutMs?: number } = {},
): Promise<Settled> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (let round = 0; ; round++) {
    const s1 = pair.rxStats();
    const t1 = BigInt(Date.now()) * 1_000_000n;
    const collections = (points: Point[]) =>
      new Set(
        points
          .filter(
            (p) => p.metric === 'carnx.packets' && p.attributes['network.interface.name'] === ifname && p.time > t1,
          )
          .map((p) => p.time),
      ).size;
    let points: Point[] = [];
    await waitFor(
      `two collections of ${ifname} after a look at its statistics`,
      () => collections((points = collector.points())) >= 2,
      15_000,
    );
    let witnessFile: string | undefined;
    if (options.capture) {
      // tcpdump writes each frame as it reads it (-U): wait until the file stops growing, then copy it.
      let previous = -1;
      const bytes = await waitFor(
        'the capture to catch up',
        async () => {
          const now = readFileSync(options.capture!.file);
          if (now.length === previous) return now;
          previous = now.length;
          await sleep(200);
          return undefined;
        },
        5_000,
        0,
      );
      witnessFile = join(options.dir!, `witness-${round}-${Date.now()}.pcap`);
      writeFileSync(witnessFile, bytes);
    }
    const s2 = pair.rxStats();
    if (s1.packets === s2.packets && s1.bytes === s2.bytes) return { rx: s1, points, witnessFile };
    if (Date.now() > deadline) throw new Error(`${ifname} never went quiet: rx ${s1.packets} -> ${s2.packets}`);
  }
}

/**
 * Cumulative series that went down (by end time) without a reset: OTLP marks a reset by a later start time, which the
 * agent's own metrics have after a restart. carnx's counters must keep their start time; tests check that separately.
 */
export function decreasingSeries(points: readonly Point[]): string[] {
  const bad: string[] = [];
  for (const [key, series] of bySeries(points.filter((p) => p.temporality === 2))) {
    for (let i = 1; i < series.length; i++) {
      const [a, b] = [series[i - 1]!, series[i]!];
      if (b.start > a.start) continue;
      const down =
        a.int !== undefined ? b.int! < a.int : (b.count ?? 0n) < (a.count ?? 0n) || (b.sum ?? 0) < (a.sum ?? 0);
      if (down || b.start < a.start) {
        bad.push(
          `${key}: ${a.int ?? a.count} at ${a.time} then ${b.int ?? b.count} at ${b.time} (start ${a.start} -> ${b.start})`,
        );
        break;
      }
    }
  }
  return bad;
}

export function vmRssKb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  if (!line) throw new Error(`no VmRSS for ${pid}`);
  return Number(line.split(/\s+/)[1]);
}

export const PACKAGE_VERSION = (
  JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as {
    version: string;
  }
).version;
