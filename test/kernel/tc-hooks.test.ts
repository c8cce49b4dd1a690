// carnx on tcx hooks, on veths: transmit counted frame for frame against the peer, TSO/GSO, TC ingress with GRO, lifecycle, sharing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { libbpf, type TcxDirection } from '../../src/bpf/libbpf.js';
import { emptyCounters, sum, type InterfaceCounters } from '../../src/bpf/counter-layout.js';
import { interfacePins } from '../../src/attach/pin-paths.js';
import type { Direction } from '../../src/attach/attach-hooks.js';
import { MAIN, startAgent, testBpffs, type AgentProcess, type TestBpffs } from '../fixtures/agent-process.js';
import { catalogue } from '../fixtures/catalogue.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { command, commandResult } from '../fixtures/command.js';
import { addExpected, diffCounters, expectedFor } from '../fixtures/expected-counts.js';
import { classIndex, TCP, verdictAt, type Verdict } from '../fixtures/frames.js';
import { xdpOn } from '../fixtures/kernel-objects.js';
import { ip, PEER_V6, up, vethPair, type VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { ping, sendUdp, tcpConnections, TRAFFIC } from '../fixtures/traffic.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';
import { Capture, readPcap, select, witnessCounts, writePcap, type PcapRecord } from '../fixtures/witness.js';

const execFileAsync = promisify(execFile);
const XDP_SOURCE = fileURLToPath(new URL('../../../xdp/carnx.bpf.c', import.meta.url));
const FOREIGN_SOURCE = fileURLToPath(new URL('../../../test/fixtures/foreign-tc.bpf.c', import.meta.url));
const ARCH_INCLUDE = `/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
/** Where the catalogue's crafted frames come from (frames.ts): tells them apart from the host's own traffic. */
const CRAFTED_SOURCE = '02:00:00:00:00:01';
const ETH_HEADER = 14;

const Tc = suite('tc hooks');
const cleanups = new Cleanups();
let work = '';
/** A port per test process, so parallel runs by other engineers do not collide. */
let port = 20_000 + (process.pid % 20_000);

Tc.before(
  reported(() => {
    requireRoot('tcx hooks');
    work = mkdtempSync(join(tmpdir(), 'carnx-tc-'));
  }),
);
// Each test's steps run in reverse order of creation (captures, servers and agents before the pins and namespaces they
// use), every one even if another fails.
Tc.after.each(() => cleanups.run());
Tc.after(() => rmSync(work, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------------------
// Helpers of this file: the kernel's statistics on either side, captures read while they grow, servers, BPF objects.

type Stat = 'rx_packets' | 'rx_bytes' | 'tx_packets' | 'tx_bytes';

function hostStat(pair: VethPair, name: Stat): bigint {
  return BigInt(readFileSync(`/sys/class/net/${pair.host}/statistics/${name}`, 'utf8').trim());
}

/** What the peer, inside its namespace, says it received or sent. */
function peerStat(pair: VethPair, name: Stat): bigint {
  return BigInt(pair.exec('cat', [`/sys/class/net/${pair.peer}/statistics/${name}`]).trim());
}

/** The whole records tcpdump has written so far (it writes each frame as it arrives). */
function captured(capture: Capture): PcapRecord[] {
  return existsSync(capture.file) ? readPcap(readFileSync(capture.file)) : [];
}

/** A copy of the first `n` frames of a capture: the frames that match a counter snapshot taken at that point. */
function firstFrames(file: string, n: number, name: string): string {
  const out = join(work, name);
  command('tcpdump', ['-r', file, '-c', String(n), '-w', out]);
  return out;
}

/** The frames of `file` that match a tcpdump filter, as a new file. */
function filtered(file: string, filter: string, name: string): string {
  const out = join(work, name);
  command('tcpdump', ['-r', file, '-w', out, filter]);
  return out;
}

/** Stops a capture and fails if the kernel dropped any frame before tcpdump read it (the witness would be short). */
async function stopCapture(capture: Capture): Promise<void> {
  const stats = await capture.stop();
  assert.is(stats.dropped, 0, `tcpdump dropped ${stats.dropped} frames: the witness is incomplete`);
}

/** Turns IPv6 off on both sides of the pair: no router solicitations, ND or MLD, so the pair falls silent. */
function ipv4Only(pair: VethPair): void {
  command('sysctl', ['-qw', `net.ipv6.conf.${pair.host}.disable_ipv6=1`]);
  pair.exec('sysctl', ['-qw', `net.ipv6.conf.${pair.peer}.disable_ipv6=1`]);
}

/** Waits until a listener on `address`:`p` exists (in the pair's namespace, or in the root one). */
async function listening(address: string, p: number, pair?: VethPair): Promise<void> {
  const args = ['-Hltn', `src ${address}:${p}`];
  await waitFor(`a listener on ${address}:${p}`, () =>
    (pair ? pair.exec('ss', args) : command('ss', args)).trim() !== '' ? true : undefined,
  );
}

/** A long-running process that `cleanups` kills (its pid only). */
function server(child: ChildProcess): ChildProcess {
  return cleanups.add(child, (c) => {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
}

/** iperf3 -s on `address` (inside the pair's namespace, or in the root one), until the test ends. Returns its port. */
async function iperfServer(address: string, pair?: VethPair): Promise<number> {
  const p = port++;
  const args = ['-s', '-B', address, '-p', String(p)];
  server(pair ? pair.spawn('iperf3', args) : spawn('iperf3', args, { stdio: 'ignore' }));
  await listening(address, p, pair);
  return p;
}

/** A TCP server in the namespace that reads everything and closes when the client does. Returns its port. */
async function tcpSinkInNamespace(pair: VethPair): Promise<number> {
  const p = port++;
  const code = `require('net').createServer((s) => s.resume().on('end', () => s.end())).listen(${p}, '${pair.peerAddress}')`;
  server(pair.spawn('node', ['-e', code]));
  await listening(pair.peerAddress, p, pair);
  return p;
}

/** `count` TCP connections from the root namespace, each sending `size` bytes and closing (traffic.mjs). */
function tcpFromHost(to: string, p: number, count: number, size: number): void {
  command(process.execPath, [TRAFFIC, 'tcp', to, String(p), String(count), String(size)]);
}

/** `count` UDP datagrams of `size` bytes from the root namespace to port 9 (discard) of `to` (traffic.mjs). */
function udpFromHost(to: string, count: number, size: number): void {
  command(process.execPath, [TRAFFIC, 'udp', to, '9', String(count), String(size)]);
}

/** Sends frames out of the host side with tcpreplay; fails unless every one was sent. */
function replayOnHost(pair: VethPair, frames: readonly Buffer[]): void {
  const file = join(work, `host-replay-${Date.now()}.pcap`);
  writePcap(file, frames);
  const out = command('tcpreplay', ['-q', '--topspeed', '-i', pair.host, file]);
  const sent = /Actual: (\d+) packets/.exec(out)?.[1];
  if (Number(sent) !== frames.length) throw new Error(`tcpreplay sent ${sent} of ${frames.length}: ${out}`);
}

/** A clang-built BPF object in the work directory. */
function compile(source: string, output: string, defines: string[] = []): string {
  const path = join(work, output);
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-I${ARCH_INCLUDE}`, ...defines, '-c', source, '-o', path]);
  return path;
}

const tcxOn = (pair: VethPair, direction: TcxDirection) => libbpf().tcxQuery(pair.ifindex(), direction, pair.host);

/** Whether a link id still exists in the kernel. */
function linkExists(id: number): boolean {
  let fd: number;
  try {
    fd = libbpf().linkFdById(id);
  } catch {
    return false;
  }
  libbpf().closeFd(fd);
  return true;
}

/** The agent's 'attached' lines for both directions of `ifname`. */
async function attachedBoth(agent: AgentProcess, ifname: string, from = 0) {
  const receive = await agent.waitForMsg('attached', { interface: ifname, direction: 'receive' }, undefined, from);
  const transmit = await agent.waitForMsg('attached', { interface: ifname, direction: 'transmit' }, undefined, from);
  return { receive, transmit };
}

/** Something read together with the kernel's packet count of one direction of the host side, while neither moves. */
function quietRead<T>(
  pair: VethPair,
  direction: Direction,
  read: () => T,
): Promise<{ value: T; kernelPackets: bigint }> {
  const stat: Stat = direction === 'receive' ? 'rx_packets' : 'tx_packets';
  return waitFor(
    `${pair.host} ${direction} to go quiet`,
    () => {
      const before = hostStat(pair, stat);
      const value = read();
      return hostStat(pair, stat) === before && { value, kernelPackets: before };
    },
    5_000,
    20,
  );
}

/** What carnx counted on transmit while `send` ran, and the frames the peer received meanwhile, matched at one moment. */
interface Transmitted {
  counted: InterfaceCounters;
  /** The peer's capture, cut to the frames that match `counted`. */
  file: string;
  frames: PcapRecord[];
  /** The peer's rx_packets over the same time (veth's tx_packets agrees: each is one skb handed to veth). */
  peerPackets: bigint;
}

/**
 * Captures on the peer while `send` runs, then waits for a settled moment: the capture, the peer's rx_packets and the
 * host side's tx_packets agree on how many frames crossed, and carnx's counters and the capture hold still around it.
 */
async function transmitted(
  pair: VethPair,
  bpffs: TestBpffs,
  name: string,
  send: () => unknown | Promise<unknown>,
): Promise<Transmitted> {
  const capture = cleanups.add(await Capture.start(pair.peer, work, { netns: pair.ns }), (c) => c.kill());
  const start = bpffs.read(pair.host, 'transmit').counters;
  const peerStart = peerStat(pair, 'rx_packets');
  const hostStart = hostStat(pair, 'tx_packets');
  await send();
  const end = await waitFor(
    `${name}: carnx, the peer and the capture to settle`,
    () => {
      const n = captured(capture).length;
      const counted = diffCounters(bpffs.read(pair.host, 'transmit').counters, start);
      const peer = peerStat(pair, 'rx_packets') - peerStart;
      const host = hostStat(pair, 'tx_packets') - hostStart;
      const again = diffCounters(bpffs.read(pair.host, 'transmit').counters, start);
      const still = captured(capture).length === n && sum(again.packets) === sum(counted.packets);
      return still && BigInt(n) === peer && host === peer && { counted, n, peer };
    },
    15_000,
    100,
  );
  await stopCapture(capture);
  const file = firstFrames(capture.file, end.n, `${name}.pcap`);
  return { counted: end.counted, file, frames: readPcap(readFileSync(file)), peerPackets: end.peer };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Transmit exactness.

Tc(
  'transmit: every frame out of the host side is counted as the peer received it, by class, flag and size',
  async () => {
    const pair = vethPair(cleanups, 'x');
    // Silence first: nothing leaves the host side while it is down, so carnx, the capture and the peer start together.
    ip('link', 'set', pair.host, 'down');
    const bpffs = testBpffs(cleanups, 'tx');
    const agent = startAgent(cleanups, bpffs, pair.host);
    const { transmit } = await attachedBoth(agent, pair.host);
    assert.is(transmit.hook, 'tc-egress');
    assert.equal(tcxOn(pair, 'egress'), [transmit.progId], 'carnx alone on TC egress');
    const crafted = catalogue();
    const UDP4 = 40;
    const UDP6 = 25;
    const PINGS_OUT = 5;
    const PINGS_IN = 4;
    const CONNECT_OUT = 4;
    const CONNECT_IN = 6;
    const sink = await tcpSinkInNamespace(pair);
    const {
      counted,
      file: witnessFile,
      peerPackets,
    } = await transmitted(pair, bpffs, 'tx-witness', async () => {
      ip('link', 'set', pair.host, 'up');
      up(pair);
      // Crafted frames of every class, flag, tag depth and extension-header case, sent out of the host side.
      replayOnHost(
        pair,
        crafted.map((f) => f.bytes),
      );
      // The host's own sockets: UDP over IPv4 and IPv6, echo requests out and echo replies out, TCP both ways.
      udpFromHost(pair.peerAddress, UDP4, 100);
      udpFromHost(`${PEER_V6}%${pair.host}`, UDP6, 60);
      command('ping', ['-c', String(PINGS_OUT), '-i', '0.05', '-W', '2', '-q', pair.peerAddress]);
      ping(pair, pair.hostAddress, PINGS_IN);
      tcpFromHost(pair.peerAddress, sink, CONNECT_OUT, 500);
      await tcpConnections(pair, pair.hostAddress, CONNECT_IN, 300);
    });
    assert.is(sum(counted.packets), peerPackets, "carnx packets = the peer's rx_packets");

    // The crafted frames reached the peer whole and in order; the rest is the host's own traffic, classified by tcpdump.
    const replayed = select(witnessFile, `ether src ${CRAFTED_SOURCE}`);
    assert.equal(
      replayed.lengths,
      crafted.map((f) => f.bytes.length),
      'every crafted frame, frame for frame',
    );
    const own = witnessCounts(filtered(witnessFile, `not ether src ${CRAFTED_SOURCE}`, 'tx-own.pcap'));
    const expected = expectedFor(crafted.map((f) => ({ verdict: verdictAt(f), length: f.bytes.length })));
    const add = (a: bigint[], b: bigint[]) => a.map((v, i) => v + b[i]!);
    assert.equal(
      counted,
      {
        packets: add(expected.packets, own.packets),
        bytes: add(expected.bytes, own.bytes),
        tcpFlags: add(expected.tcpFlags, own.tcpFlags),
        tcpSyn: add(expected.tcpSyn, own.tcpSyn),
        vlanPackets: expected.vlanPackets + own.vlanPackets,
        malformed: expected.malformed, // real traffic is well formed
        sizeBuckets: add(expected.sizeBuckets, own.sizeBuckets),
      },
      'carnx = the crafted frames as predicted + the host traffic as the peer captured it',
    );

    // What the host sent, independent of any capture.
    const at = (network: Parameters<typeof classIndex>[0], transport: Parameters<typeof classIndex>[1]) =>
      own.packets[classIndex(network, transport)]!;
    assert.is(at('ipv4', 'udp'), BigInt(UDP4), 'IPv4 datagrams sent');
    assert.is(own.bytes[classIndex('ipv4', 'udp')], BigInt(UDP4 * (14 + 20 + 8 + 100)), 'IPv4 UDP bytes sent');
    assert.is(at('ipv6', 'udp'), BigInt(UDP6), 'IPv6 datagrams sent');
    assert.is(own.bytes[classIndex('ipv6', 'udp')], BigInt(UDP6 * (14 + 40 + 8 + 60)), 'IPv6 UDP bytes sent');
    assert.is(at('ipv4', 'icmp'), BigInt(PINGS_OUT + PINGS_IN), 'echo requests out + echo replies out');
    assert.equal(
      own.tcpSyn,
      [BigInt(CONNECT_OUT), BigInt(CONNECT_IN)],
      'a SYN per connection opened, a SYN-ACK per accepted',
    );
    assert.ok(own.tcpFlags[0]! >= BigInt(CONNECT_OUT + CONNECT_IN), 'a FIN per connection at least');
    // Anything else on the pair was the kernel's own: ARP, and ICMPv6 (neighbour and router solicitations, MLD).
    const expectedOnly = new Set(
      [
        ['ipv4', 'tcp'],
        ['ipv4', 'udp'],
        ['ipv4', 'icmp'],
        ['ipv6', 'udp'],
        ['ipv6', 'icmpv6'],
        ['arp', 'none'],
      ].map(([n, t]) => classIndex(n as 'ipv4', t as 'none')),
    );
    own.packets.forEach((n, i) => {
      if (!expectedOnly.has(i)) assert.is(n, 0n, `no frame of class ${i} was sent by the host`);
    });
    console.log(
      `  transmit: ${crafted.length} crafted + ${own.total.packets} host frames (${own.packets[classIndex('ipv6', 'icmpv6')]} ICMPv6,` +
        ` ${own.packets[classIndex('arp', 'none')]} ARP from the kernel); carnx ${sum(counted.packets)} packets, ${sum(counted.bytes)} bytes`,
    );
    assert.is((await agent.stop()).code, 0);
  },
);

// ---------------------------------------------------------------------------------------------------------------
// 2. TSO/GSO on egress.

/** A frame's TCP layout, from the captured headers (untagged IPv4 only: the stream below), or undefined. */
function tcpLayout(rec: PcapRecord): { headers: number; payload: number; flags: number } | undefined {
  const d = rec.data;
  if (d.readUInt16BE(12) !== 0x0800 || d[23] !== 6) return undefined;
  const ihl = (d[14]! & 0x0f) * 4;
  const doff = (d[14 + ihl + 12]! >> 4) * 4;
  return { headers: ETH_HEADER + ihl + doff, payload: d.readUInt16BE(16) - ihl - doff, flags: d[14 + ihl + 13]! };
}

/**
 * What the captured frames put on a wire, the kernel's way (tcp_gso_segment): a TCP frame with more than `mss` bytes
 * of payload is a GSO skb that was never split (veth carries it whole), and stands for ceil(payload / mss) segments,
 * each with the headers; FIN and PSH stay on the last, CWR on the first. Every other frame is itself.
 */
function wireCounts(frames: readonly PcapRecord[], mss: number): { counts: InterfaceCounters; superframes: number } {
  const counts = emptyCounters();
  const tcp4 = classIndex('ipv4', 'tcp');
  let superframes = 0;
  for (const rec of frames) {
    const t = tcpLayout(rec);
    if (t === undefined) {
      if (rec.data.readUInt16BE(12) !== 0x0806)
        throw new Error(`unexpected frame in the stream: ${rec.data.toString('hex', 0, 34)}`);
      addExpected(
        counts,
        { classIndex: classIndex('arp', 'none'), malformed: null, tcpFlags: null, vlan: false },
        rec.length,
      );
      continue;
    }
    const segs = t.payload > mss ? Math.ceil(t.payload / mss) : 1;
    if (segs > 1) superframes++;
    for (let i = 0; i < segs; i++) {
      const last = i === segs - 1;
      let flags = t.flags;
      if (!last) flags &= ~(TCP.FIN | TCP.PSH);
      if (i > 0) flags &= ~TCP.CWR;
      const verdict: Verdict = { classIndex: tcp4, malformed: null, tcpFlags: flags, vlan: false };
      addExpected(counts, verdict, segs === 1 ? rec.length : t.headers + (last ? t.payload - (segs - 1) * mss : mss));
    }
  }
  return { counts, superframes };
}

Tc('transmit with TSO and GSO: carnx counts the segments and bytes the stream puts on the wire', async () => {
  const pair = vethPair(cleanups, 'g');
  ipv4Only(pair);
  const bpffs = testBpffs(cleanups, 'gso');
  const agent = startAgent(cleanups, bpffs, pair.host, ['--interfaces-directions', 'transmit']);
  await agent.waitForMsg('attached', { interface: pair.host, direction: 'transmit', hook: 'tc-egress' });
  const iperf = await iperfServer(pair.peerAddress, pair);
  // GSO alone first: the kernel splits the stream after TC egress, so the peer receives real segments, and the largest
  // payload among them is the MSS the other settings are judged with.
  const settings = [
    { name: 'GSO (TSO off)', tso: 'off', gso: 'on' },
    { name: 'TSO', tso: 'on', gso: 'on' },
    { name: 'neither', tso: 'off', gso: 'off' },
  ];
  let mss = 0;
  for (const s of settings) {
    command('ethtool', ['-K', pair.host, 'tso', s.tso, 'gso', s.gso]);
    const { counted, file, frames, peerPackets } = await transmitted(pair, bpffs, `gso-${s.tso}-${s.gso}`, () =>
      execFileAsync('iperf3', ['-c', pair.peerAddress, '-p', String(iperf), '-n', '8M']),
    );
    if (mss === 0) {
      mss = Math.max(...frames.map((f) => tcpLayout(f)?.payload ?? 0));
      assert.ok(mss > 1000 && mss <= 1460, `the stream's MSS (${mss})`);
    }
    const wire = wireCounts(frames, mss);
    console.log(
      `  ${s.name}: peer received ${frames.length} frames (${sum(frames.map((f) => BigInt(f.length)))} bytes),` +
        ` ${wire.superframes} of them unsplit GSO skbs; wire ${sum(wire.counts.packets)} segments, ${sum(wire.counts.bytes)} bytes;` +
        ` carnx ${sum(counted.packets)} packets, ${sum(counted.bytes)} bytes`,
    );
    assert.equal(counted, wire.counts, `${s.name}: carnx = the wire segments, their bytes, flags and sizes`);
    if (s.tso === 'on') {
      // veth never splits a TSO skb: the peer (and veth's own tx_packets) see one frame per skb, carnx the segments.
      assert.ok(wire.superframes > 0, 'TSO handed veth whole GSO skbs');
      assert.ok(sum(counted.packets) > peerPackets, 'so carnx counts more packets than the peer received');
    } else {
      assert.is(wire.superframes, 0, `${s.name}: every frame on the pair is one segment`);
      assert.is(sum(counted.packets), peerPackets, `${s.name}: carnx packets = the peer's rx_packets`);
      assert.is(
        sum(counted.bytes),
        sum(frames.map((f) => BigInt(f.length))),
        `${s.name}: carnx bytes = the frames as the peer saw them`,
      );
      // The witness's own classification agrees too.
      const w = witnessCounts(file);
      assert.equal(counted.tcpFlags, w.tcpFlags, `${s.name}: TCP flags as tcpdump reads them`);
      assert.equal(counted.sizeBuckets, w.sizeBuckets, `${s.name}: sizes as tcpdump reads them`);
    }
  }
  assert.is((await agent.stop()).code, 0);
});

/** A VXLAN tunnel across the pair (port 4789), with its own /30 inside: traffic stays on the pair. */
function vxlanOver(pair: VethPair): { hostInner: string; peerInner: string } {
  const subnet = ((Number(pair.hostAddress.split('.')[2]) + 125) % 250) + 1;
  const [hostInner, peerInner] = [`169.254.${subnet}.1`, `169.254.${subnet}.2`];
  const [hostVx, peerVx] = [`${pair.host.slice(0, -1)}v`, `${pair.peer.slice(0, -1)}v`];
  // A VNI is taken per namespace and port: one of this process's own, so no other tunnel in the root namespace clashes.
  const vni = String(1 + ((process.pid * 251 + subnet) % 16_000_000));
  const vxlan = (dev: string, local: string, remote: string, lower: string) =>
    `link add ${dev} type vxlan id ${vni} dstport 4789 local ${local} remote ${remote} dev ${lower}`.split(' ');
  cleanups.add(hostVx, (dev) => commandResult('ip', ['link', 'del', dev]));
  ip(...vxlan(hostVx, pair.hostAddress, pair.peerAddress, pair.host));
  ip('addr', 'add', `${hostInner}/30`, 'dev', hostVx);
  ip('link', 'set', hostVx, 'up');
  ip('-n', pair.ns, ...vxlan(peerVx, pair.peerAddress, pair.hostAddress, pair.peer));
  ip('-n', pair.ns, 'addr', 'add', `${peerInner}/30`, 'dev', peerVx);
  ip('-n', pair.ns, 'link', 'set', peerVx, 'up');
  return { hostInner, peerInner };
}

/**
 * GSO skbs as a VM's virtio-net header makes them (SKB_GSO_DODGY: gso_segs left 0 for the kernel to work out), sent
 * through a packet socket with PACKET_VNET_HDR: `count` IPv4 TCP frames of `payload` bytes, gso_size `mss`, PSH-ACK.
 */
const DODGY_SENDER = `
import socket, struct, sys
ifname, src, dst, count, payload, mss = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.setsockopt(263, 15, 1)  # SOL_PACKET, PACKET_VNET_HDR
s.bind((ifname, 0))
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40 + payload, 1, 0x4000, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
tcp = struct.pack('!HHIIBBHHH', 40000, 9, 1, 1, 5 << 4, 0x18, 65535, 0, 0)
eth = bytes.fromhex('020000000002020000000001') + b'\\x08\\x00'
vnet = struct.pack('<BBHHHH', 1, 1, 54, mss, 34, 16)  # NEEDS_CSUM, GSO_TCPV4, hdr_len, gso_size, csum_start/offset
for _ in range(count):
    s.send(vnet + eth + ip + tcp + b'a' * payload)
`;

/** `count` UDP_SEGMENT sends of `payload` bytes from the root namespace, split into datagrams of `mss` bytes. */
const UDP_GSO_SENDER = `
import socket, sys
dst, count, payload, mss = sys.argv[1], *map(int, sys.argv[2:5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(17, 103, mss)  # SOL_UDP, UDP_SEGMENT
for _ in range(count):
    s.sendto(b'u' * payload, (dst, 9))
`;

Tc(
  'transmit: tunnel TSO, UDP GSO and virtio-style GSO skbs are counted as the segments the peer receives',
  async () => {
    const pair = vethPair(cleanups, 'v');
    ipv4Only(pair);
    // Every offload of these skbs off on the host side: the kernel splits them after TC egress, so the peer receives
    // the segments a NIC would have put on the wire, and the capture is the wire.
    const offloads = ['tso', 'tx-udp-segmentation', 'tx-udp_tnl-segmentation', 'tx-udp_tnl-csum-segmentation'];
    command('ethtool', ['-K', pair.host, ...offloads.flatMap((o) => [o, 'off'])]);
    const { hostInner, peerInner } = vxlanOver(pair);
    const bpffs = testBpffs(cleanups, 'gsokinds');
    const agent = startAgent(cleanups, bpffs, pair.host, ['--interfaces-directions', 'transmit']);
    await agent.waitForMsg('attached', { interface: pair.host, direction: 'transmit', hook: 'tc-egress' });
    const iperf = await iperfServer(peerInner, pair);
    const cases: Array<{ name: string; send: () => unknown; segments: (frames: PcapRecord[]) => boolean }> = [
      {
        // TCP inside VXLAN: each segment repeats the outer headers and VXLAN + inner Ethernet, IPv4 and TCP headers.
        name: 'vxlan-tso',
        send: () => execFileAsync('iperf3', ['-c', peerInner, '-B', hostInner, '-p', String(iperf), '-n', '4M']),
        segments: (frames) => frames.filter((f) => f.length > 1400).length > 1000,
      },
      {
        name: 'udp-gso',
        send: () => command('python3', ['-c', UDP_GSO_SENDER, pair.peerAddress, '20', '6000', '1200']),
        // 20 sends of 6000 bytes: 5 datagrams of 1200 each, 14 + 20 + 8 + 1200 bytes on the wire.
        segments: (frames) => frames.filter((f) => f.length === 1242).length === 100,
      },
      {
        name: 'virtio-gso',
        send: () =>
          command('python3', ['-c', DODGY_SENDER, pair.host, pair.hostAddress, pair.peerAddress, '10', '5000', '1000']),
        // 10 frames of 5000 bytes: 5 segments of 1000 each, 14 + 20 + 20 + 1000 bytes on the wire.
        segments: (frames) => frames.filter((f) => f.length === 1054).length === 50,
      },
    ];
    // Every case runs before any is judged, so a failure shows the numbers of all three.
    const results = [];
    for (const c of cases) {
      const result = await transmitted(pair, bpffs, c.name, c.send);
      const wire = witnessCounts(result.file);
      const { counted, frames } = result;
      console.log(
        `  ${c.name}: peer received ${frames.length} frames, ${wire.total.bytes} bytes;` +
          ` carnx ${sum(counted.packets)} packets, ${sum(counted.bytes)} bytes`,
      );
      results.push({ ...result, c, wire });
    }
    for (const { c, counted, frames, peerPackets, wire } of results) {
      assert.ok(c.segments(frames), `${c.name}: the kernel split the skbs after TC egress`);
      assert.is(sum(counted.packets), peerPackets, `${c.name}: carnx packets = the peer's rx_packets`);
      assert.equal(counted.packets, wire.packets, `${c.name}: packets by class, segment by segment`);
      assert.equal(counted.bytes, wire.bytes, `${c.name}: bytes by class, every segment's headers included`);
      assert.equal(counted.tcpFlags, wire.tcpFlags, `${c.name}: TCP flags, segment by segment`);
      assert.equal(counted.sizeBuckets, wire.sizeBuckets, `${c.name}: sizes, segment by segment`);
    }
    assert.is((await agent.stop()).code, 0);
  },
);

// ---------------------------------------------------------------------------------------------------------------
// 3. Receive fallback keeps GRO.

Tc(
  'receive: auto falls back to TC ingress (no XDP) on a jumbo veth, GRO stays on, carnx counts segments, merged or whole',
  async () => {
    const MTU = 9500;
    const pair = vethPair(cleanups, 'r', { mtu: MTU });
    ipv4Only(pair);
    command('ethtool', ['-K', pair.host, 'gro', 'on']);
    // The peer sends MTU-sized segments: with TSO off its GSO splits the stream before veth.
    pair.exec('ethtool', ['-K', pair.peer, 'tso', 'off']);
    const bpffs = testBpffs(cleanups, 'gro');
    const agent = startAgent(cleanups, bpffs, pair.host, ['--xdp-mode', 'auto', '--interfaces-directions', 'receive']);
    const fell = await agent.waitForMsg('fell back to tc-ingress', { interface: pair.host });
    assert.match(String(fell.reason), 'native');
    const attached = await agent.waitForMsg('attached', { interface: pair.host, direction: 'receive' });
    assert.is(attached.hook, 'tc-ingress');
    assert.is(xdpOn(pair.host), undefined, 'ip link shows no XDP program: not even generic');
    assert.equal(tcxOn(pair, 'ingress'), [attached.progId]);
    assert.match(command('ethtool', ['-k', pair.host]), /generic-receive-offload: on/);

    const iperf = await iperfServer(pair.hostAddress);
    const stream = () => pair.run('iperf3', ['-c', pair.hostAddress, '-p', String(iperf), '-n', '30M']);
    /** What the peer sent (captured outbound) and carnx counted on receive while `send` ran, at a settled moment. */
    const received = async (name: string, send: () => Promise<unknown>) => {
      const sent = cleanups.add(await Capture.start(pair.peer, work, { netns: pair.ns, direction: 'out' }), (c) =>
        c.kill(),
      );
      const start = bpffs.read(pair.host).counters;
      const rxStart = { packets: hostStat(pair, 'rx_packets'), bytes: hostStat(pair, 'rx_bytes') };
      await send();
      const end = await waitFor(
        `${name}: the stream to settle`,
        () => {
          const n = captured(sent).length;
          const counted = diffCounters(bpffs.read(pair.host).counters, start);
          const rx = {
            packets: hostStat(pair, 'rx_packets') - rxStart.packets,
            bytes: hostStat(pair, 'rx_bytes') - rxStart.bytes,
          };
          const again = diffCounters(bpffs.read(pair.host).counters, start);
          const still = captured(sent).length === n && sum(again.packets) === sum(counted.packets);
          return (
            still &&
            BigInt(n) === rx.packets &&
            hostStat(pair, 'rx_packets') - rxStart.packets === rx.packets && { counted, n, rx }
          );
        },
        15_000,
        100,
      );
      await stopCapture(sent);
      const file = firstFrames(sent.file, end.n, `${name}.pcap`);
      return { counted: end.counted, rx: end.rx, file, frames: readPcap(readFileSync(file)) };
    };

    // The peer's TSO off: its GSO splits the stream before veth, the host's GRO merges it again before TC ingress.
    const arrived = cleanups.add(await Capture.start(pair.host, work), (c) => c.kill());
    const { counted, rx, file } = await received('gro', stream);
    await stopCapture(arrived);
    const wire = witnessCounts(file);
    // What GRO made of it: the host's own capture (after GRO) holds fewer, larger frames than the wire.
    const merged = captured(arrived);
    const largest = Math.max(...merged.map((r) => r.length));
    console.log(
      `  GRO: ${wire.total.packets} segments on the wire (${wire.total.bytes} bytes), ${merged.length} frames after GRO (largest ${largest});` +
        ` rx_packets +${rx.packets}, rx_bytes +${rx.bytes}; carnx ${sum(counted.packets)} packets, ${sum(counted.bytes)} bytes`,
    );
    assert.ok(largest > MTU + ETH_HEADER, `GRO merged segments (largest frame after GRO: ${largest} bytes)`);
    assert.ok(BigInt(merged.length) < wire.total.packets, 'fewer skbs after GRO than segments on the wire');
    assert.is(sum(counted.packets), rx.packets, 'carnx packets = rx_packets');
    assert.is(sum(counted.packets), wire.total.packets, 'carnx packets = segments the peer sent');
    assert.is(sum(counted.bytes), wire.total.bytes, 'carnx bytes = the bytes the peer sent, frame by frame');
    // With GRO on, veth receives through its NAPI path, which counts rx_bytes after the Ethernet header is pulled.
    assert.is(rx.bytes + BigInt(ETH_HEADER) * rx.packets, wire.total.bytes, 'rx_bytes = wire bytes - 14 per frame');
    assert.equal(counted.packets, wire.packets, 'classes');
    assert.equal(counted.tcpFlags, wire.tcpFlags, 'TCP flags, segment by segment');
    assert.equal(counted.sizeBuckets, wire.sizeBuckets, 'sizes, segment by segment');

    // The peer's TSO on: veth hands the host whole GSO skbs (there is no wire to split them, and veth takes the
    // non-NAPI path for a sender with TSO). carnx counts the segments they stand for, the kernel's rx_* the skbs.
    const mss = Math.max(...readPcap(readFileSync(file)).map((f) => tcpLayout(f)?.payload ?? 0));
    pair.exec('ethtool', ['-K', pair.peer, 'tso', 'on']);
    const whole = await received('tso', stream);
    const model = wireCounts(whole.frames, mss);
    const skbBytes = sum(whole.frames.map((f) => BigInt(f.length)));
    console.log(
      `  peer TSO: peer sent ${whole.frames.length} skbs (${model.superframes} GSO, ${skbBytes} bytes) = rx_packets +${whole.rx.packets},` +
        ` rx_bytes +${whole.rx.bytes}; as segments ${sum(model.counts.packets)}, ${sum(model.counts.bytes)} bytes;` +
        ` carnx ${sum(whole.counted.packets)} packets, ${sum(whole.counted.bytes)} bytes`,
    );
    assert.ok(model.superframes > 0, 'the peer sent GSO skbs');
    assert.equal(whole.counted, model.counts, 'carnx = the segments those skbs stand for (MSS from the GRO run)');
    assert.is(whole.rx.bytes, skbBytes, 'rx_bytes = the skbs, whole frames (no NAPI path)');
    assert.ok(sum(whole.counted.packets) > whole.rx.packets, 'carnx counts more packets than rx_packets here');
    assert.is((await agent.stop()).code, 0);
  },
);

// ---------------------------------------------------------------------------------------------------------------
// 4. Lifecycle of tc links.

/** carnx on both tcx hooks of `pair` (receive on TC ingress too), under `bpffs`. */
function tcAgent(bpffs: TestBpffs, pair: VethPair, extra: string[] = []): AgentProcess {
  return startAgent(cleanups, bpffs, pair.host, ['--xdp-mode', 'tc', ...extra]);
}

/** Known traffic both ways: `rx` datagrams from the namespace, `tx` datagrams from the host, 100 bytes each. */
function udpBothWays(pair: VethPair, rx: number, tx: number): void {
  if (rx > 0) sendUdp(pair, pair.hostAddress, rx, 100);
  if (tx > 0) udpFromHost(pair.peerAddress, tx, 100);
}

const UDP4 = classIndex('ipv4', 'udp');
const udpCount = (bpffs: TestBpffs, pair: VethPair, d: Direction) => bpffs.read(pair.host, d).counters.packets[UDP4]!;

Tc('restart adopts the pinned tc links: same links, counters carry over, one program per hook', async () => {
  const pair = vethPair(cleanups, 'a');
  const bpffs = testBpffs(cleanups, 'adopt');
  const first = tcAgent(bpffs, pair);
  const { receive, transmit } = await attachedBoth(first, pair.host);
  assert.is(receive.hook, 'tc-ingress');
  assert.is(transmit.hook, 'tc-egress');
  udpBothWays(pair, 20, 15);
  const before = { rx: udpCount(bpffs, pair, 'receive'), tx: udpCount(bpffs, pair, 'transmit') };
  const links = { rx: bpffs.linkId(pair.host, 'receive'), tx: bpffs.linkId(pair.host, 'transmit') };
  const since = bpffs.read(pair.host, 'transmit').meta.countingSinceUnixNs;
  await first.stop('SIGKILL');
  udpBothWays(pair, 25, 11); // nobody running: the pinned links keep counting
  const second = tcAgent(bpffs, pair);
  for (const direction of ['receive', 'transmit'])
    await second.waitForMsg('adopted pinned attachment', { interface: pair.host, direction });
  assert.is(udpCount(bpffs, pair, 'receive') - before.rx, 25n, 'the datagrams received while down');
  assert.is(udpCount(bpffs, pair, 'transmit') - before.tx, 11n, 'the datagrams sent while down');
  assert.equal(bpffs.linkId(pair.host, 'receive'), links.rx, 'the same receive link and program');
  assert.equal(bpffs.linkId(pair.host, 'transmit'), links.tx, 'the same transmit link and program');
  assert.is(bpffs.read(pair.host, 'transmit').meta.countingSinceUnixNs, since, 'start time kept');
  assert.equal(tcxOn(pair, 'ingress'), [links.rx.progId], 'one program on TC ingress');
  assert.equal(tcxOn(pair, 'egress'), [links.tx.progId], 'one program on TC egress');
  assert.is((await second.stop()).code, 0);
  assert.equal([tcxOn(pair, 'ingress'), tcxOn(pair, 'egress')], [[], []], 'SIGTERM took both off');
  assert.not.ok(linkExists(links.rx.linkId) || linkExists(links.tx.linkId), 'and the links are gone');
  assert.not.ok(existsSync(`${bpffs.path}/carnx`), 'no pins left');
});

Tc('an upgraded object is swapped into both tc links with one link update each; the counters carry over', async () => {
  const pair = vethPair(cleanups, 'u');
  const bpffs = testBpffs(cleanups, 'upgrade');
  // The same source with another extension-header bound: new programs (new tags), the same maps.
  const upgraded = compile(XDP_SOURCE, 'carnx-upgraded.bpf.o', ['-DCARNX_MAX_IPV6_EXT_HEADERS=5']);
  const first = tcAgent(bpffs, pair, ['--xdp-keep-attached-on-exit']);
  await attachedBoth(first, pair.host);
  udpBothWays(pair, 10, 7);
  const before = { rx: bpffs.linkId(pair.host, 'receive'), tx: bpffs.linkId(pair.host, 'transmit') };
  const counted = { rx: udpCount(bpffs, pair, 'receive'), tx: udpCount(bpffs, pair, 'transmit') };
  assert.is((await first.stop()).code, 0);
  const second = tcAgent(bpffs, pair, ['--xdp-object', upgraded]);
  for (const [direction, old] of [
    ['receive', before.rx],
    ['transmit', before.tx],
  ] as const) {
    const line = await second.waitForMsg('upgraded program in place', { interface: pair.host, direction });
    const now = bpffs.linkId(pair.host, direction);
    assert.is(now.linkId, old.linkId, `${direction}: the link was updated, not replaced`);
    assert.is.not(now.progId, old.progId, `${direction}: a new program runs`);
    assert.is(line.oldProgId, old.progId);
    assert.is(line.progId, now.progId);
  }
  assert.equal(tcxOn(pair, 'ingress'), [bpffs.linkId(pair.host, 'receive').progId], 'only the new program on ingress');
  assert.equal(tcxOn(pair, 'egress'), [bpffs.linkId(pair.host, 'transmit').progId], 'only the new program on egress');
  udpBothWays(pair, 10, 7);
  assert.is(udpCount(bpffs, pair, 'receive'), counted.rx + 10n, 'receive counters carried over');
  assert.is(udpCount(bpffs, pair, 'transmit'), counted.tx + 7n, 'transmit counters carried over');
  assert.is((await second.stop()).code, 0);
});

Tc('keepAttachedOnExit keeps the tc links counting; `carnx detach` removes them and every pin', async () => {
  const pair = vethPair(cleanups, 'k');
  const bpffs = testBpffs(cleanups, 'keep');
  const agent = tcAgent(bpffs, pair, ['--xdp-keep-attached-on-exit', 'true']);
  await attachedBoth(agent, pair.host);
  const links = { rx: bpffs.linkId(pair.host, 'receive'), tx: bpffs.linkId(pair.host, 'transmit') };
  assert.is((await agent.stop()).code, 0);
  for (const d of ['receive', 'transmit'] as const) {
    const pins = interfacePins(bpffs.path, pair.host, d);
    for (const p of [pins.link, pins.prog, pins.counters, pins.meta]) assert.ok(existsSync(p), `${p} kept`);
  }
  assert.equal(tcxOn(pair, 'ingress'), [links.rx.progId], 'still on TC ingress');
  assert.equal(tcxOn(pair, 'egress'), [links.tx.progId], 'still on TC egress');
  const before = { rx: udpCount(bpffs, pair, 'receive'), tx: udpCount(bpffs, pair, 'transmit') };
  udpBothWays(pair, 9, 6);
  assert.is(udpCount(bpffs, pair, 'receive') - before.rx, 9n, 'counting on with no agent (receive)');
  assert.is(udpCount(bpffs, pair, 'transmit') - before.tx, 6n, 'counting on with no agent (transmit)');
  const out = command(process.execPath, [MAIN, 'detach', '--bpffs-path', bpffs.path]);
  assert.match(out, "carnx's programs are detached");
  assert.equal([tcxOn(pair, 'ingress'), tcxOn(pair, 'egress')], [[], []], 'nothing on either tcx hook');
  assert.not.ok(linkExists(links.rx.linkId) || linkExists(links.tx.linkId), 'both links are gone');
  assert.not.ok(existsSync(`${bpffs.path}/carnx`), 'no pins left');
});

Tc(
  'an interface deleted under attached tc links leaves no link and no pin, with the agent running or not',
  async () => {
    const bpffs = testBpffs(cleanups, 'gone');
    vethPair(cleanups, 'd'); // stays, so the selection never runs empty (an agent with nothing to count exits)
    const running = vethPair(cleanups, 'd');
    const stopped = vethPair(cleanups, 'd');
    const agent = startAgent(cleanups, bpffs, 'cx*d*h', ['--xdp-mode', 'tc', '--xdp-keep-attached-on-exit']);
    await attachedBoth(agent, running.host);
    await attachedBoth(agent, stopped.host);
    const linksOf = (p: VethPair) => [bpffs.linkId(p.host, 'receive').linkId, bpffs.linkId(p.host, 'transmit').linkId];
    const [runningLinks, stoppedLinks] = [linksOf(running), linksOf(stopped)];
    running.destroy();
    for (const direction of ['receive', 'transmit'])
      await agent.waitForMsg('interface gone or deselected: detached', { interface: running.host, direction }, 5_000);
    assert.not.ok(existsSync(interfacePins(bpffs.path, running.host).dir), 'no pins of the deleted interface');
    assert.not.ok(runningLinks.some(linkExists), 'its links are gone');
    assert.is((await agent.stop()).code, 0);
    // Kept attached, the agent gone, then the interface goes: the links turn defunct; the next agent drops them.
    stopped.destroy();
    const next = startAgent(cleanups, bpffs, 'cx*d*h', ['--xdp-mode', 'tc']);
    await next.waitUntil('the stale pins to go', () => !existsSync(interfacePins(bpffs.path, stopped.host).dir));
    assert.not.ok(stoppedLinks.some(linkExists), 'the defunct links are gone with their pins');
    assert.is((await next.stop()).code, 0);
  },
);

// ---------------------------------------------------------------------------------------------------------------
// 5. A foreign program on the same tcx hooks.

/** Another tool's TC program on one tcx hook of the host side, with its own counter; `cleanups` detaches it. */
function foreignProgram(pair: VethPair, object: string, direction: TcxDirection) {
  const obj = cleanups.add(libbpf().openObject(object), (o) => o.close());
  obj.load();
  const progFd = obj.programFd('foreign_count');
  const linkFd = cleanups.add(
    libbpf().linkCreateTcx(progFd, pair.ifindex(), direction, 'after', `foreign on ${direction}`),
    (fd) => libbpf().closeFd(fd),
  );
  const mapFd = obj.mapFd('foreign_seen');
  return {
    progId: libbpf().progInfo(progFd, object).id,
    linkId: libbpf().linkInfo(linkFd, object).id,
    seen: (): bigint => libbpf().lookupPerCpuU64Sums(mapFd, 0, 8, 'foreign_seen')[0]!,
  };
}

Tc(
  'a foreign TC program on the same hooks keeps running and seeing its traffic, before, with and after carnx',
  async () => {
    const pair = vethPair(cleanups, 'f');
    const object = compile(FOREIGN_SOURCE, 'foreign-tc.bpf.o');
    const foreign = {
      ingress: foreignProgram(pair, object, 'ingress'),
      egress: foreignProgram(pair, object, 'egress'),
    };
    const bpffs = testBpffs(cleanups, 'foreign');
    /** Known traffic both ways; the foreign program's counts over it = the kernel's (and carnx's, when given). */
    const exchange = async (phase: string, carnx?: (d: Direction) => bigint) => {
      for (const [direction, hook] of [
        ['receive', 'ingress'],
        ['transmit', 'egress'],
      ] as const) {
        const read = () => ({ foreign: foreign[hook].seen(), carnx: carnx?.(direction) ?? 0n });
        const start = await quietRead(pair, direction, read);
        udpBothWays(pair, direction === 'receive' ? 12 : 0, direction === 'transmit' ? 8 : 0);
        const end = await quietRead(pair, direction, read);
        const kernel = end.kernelPackets - start.kernelPackets;
        assert.ok(kernel >= (direction === 'receive' ? 12n : 8n), `${phase}: the ${direction} traffic happened`);
        assert.is(
          end.value.foreign - start.value.foreign,
          kernel,
          `${phase}: the foreign program on ${hook} saw every packet`,
        );
        if (carnx) assert.is(end.value.carnx - start.value.carnx, kernel, `${phase}: carnx on ${hook} too`);
      }
    };
    await exchange('before carnx');
    const agent = tcAgent(bpffs, pair);
    const { receive, transmit } = await attachedBoth(agent, pair.host);
    assert.equal(tcxOn(pair, 'ingress'), [receive.progId, foreign.ingress.progId], 'carnx first on ingress');
    assert.equal(tcxOn(pair, 'egress'), [foreign.egress.progId, transmit.progId], 'carnx last on egress');
    await exchange('beside carnx', (d) => sum(bpffs.read(pair.host, d).counters.packets));
    assert.is((await agent.stop()).code, 0);
    assert.equal(tcxOn(pair, 'ingress'), [foreign.ingress.progId], 'carnx left ingress, the foreign program stayed');
    assert.equal(tcxOn(pair, 'egress'), [foreign.egress.progId], 'carnx left egress, the foreign program stayed');
    assert.ok(
      linkExists(foreign.ingress.linkId) && linkExists(foreign.egress.linkId),
      'the foreign links are untouched',
    );
    await exchange('after carnx');
  },
);

Tc.run();
