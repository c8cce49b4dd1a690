// Real attach on a veth pair, generic and native: counts of real traffic equal the kernel's own rx statistics, exactly.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { libbpf } from '../../src/bpf/libbpf.js';
import { sum, type InterfaceCounters } from '../../src/bpf/counter-layout.js';
import { BpfError } from '../../src/bpf/bpf-error.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { classIndex } from '../fixtures/frames.js';
import { diffCounters } from '../fixtures/expected-counts.js';
import { LoadedProgram, XDP_FLAGS } from '../fixtures/loaded-program.js';
import { HOST_V6, up, vethPair, type VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { ping, sendUdp, tcpConnections } from '../fixtures/traffic.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';

const ETH_HEADER = 14n;

interface Snapshot {
  rx: { packets: bigint; bytes: bigint };
  counters: InterfaceCounters;
}

/** Kernel stats and XDP counters read at one quiet moment: stats unchanged across the counter read. */
function quietSnapshot(pair: VethPair, program: LoadedProgram): Promise<Snapshot> {
  // Quiet: the statistics did not move since the previous poll, nor while the counters were read.
  let previous = pair.rxStats();
  return waitFor(
    `${pair.host} to go quiet`,
    () => {
      const before = pair.rxStats();
      const counters = program.counters();
      const after = pair.rxStats();
      const still = [previous, after].every((s) => s.packets === before.packets && s.bytes === before.bytes);
      previous = after;
      return still && { rx: before, counters };
    },
    2_000,
    20,
  );
}

const Attach = suite('attach');
const cleanups = new Cleanups();

/** carnx's program, loaded for this test and closed after it. */
const loadProgram = () => cleanups.add(new LoadedProgram(), (p) => p.close());

/** Attaches `program` to the host side of `pair` through a BPF link in `mode`; the link is closed after the test. */
function linkTo(pair: VethPair, program: LoadedProgram, mode: keyof typeof XDP_FLAGS): number {
  const fd = libbpf().linkCreateXdp(program.progFd, pair.ifindex(), XDP_FLAGS[mode], pair.host);
  cleanups.add(fd, (f) => libbpf().closeFd(f));
  return fd;
}

Attach.before(reported(() => requireRoot('attaching XDP')));
Attach.after.each(() => cleanups.run());

for (const mode of ['generic', 'native'] as const) {
  Attach(`${mode}: UDP, TCP, ICMP, IPv6 and ARP counted exactly as rx_packets / rx_bytes`, async () => {
    const pair = vethPair(cleanups, 'a');
    up(pair);
    const program = loadProgram();
    linkTo(pair, program, mode);
    const query = libbpf().xdpQuery(pair.ifindex(), pair.host);
    assert.is(query.attachMode, mode);
    assert.is(mode === 'native' ? query.drvProgId : query.skbProgId, libbpf().progInfo(program.progFd, 'carnx').id);

    const start = await quietSnapshot(pair, program);
    const UDP4 = 40;
    const UDP6 = 25;
    const PINGS = 5;
    const CONNECTIONS = 6;
    sendUdp(pair, pair.hostAddress, UDP4, 100);
    sendUdp(pair, `${HOST_V6}%${pair.peer}`, UDP6, 60);
    ping(pair, pair.hostAddress, PINGS);
    await tcpConnections(pair, pair.hostAddress, CONNECTIONS, 300);
    const end = await quietSnapshot(pair, program);

    const counted = diffCounters(end.counters, start.counters);
    const rxPackets = end.rx.packets - start.rx.packets;
    const rxBytes = end.rx.bytes - start.rx.bytes;
    assert.is(sum(counted.packets), rxPackets, 'packets: XDP vs rx_packets');
    // XDP sees whole frames. veth's rx_bytes does too while no native program is attached;
    // with one, veth counts on its NAPI path after the 14-byte Ethernet header is pulled.
    const headerBytes = mode === 'native' ? ETH_HEADER * rxPackets : 0n;
    assert.is(sum(counted.bytes), rxBytes + headerBytes, `bytes: XDP vs rx_bytes (${mode})`);
    // Independent of any statistic: the frames we sent, to the byte (Ethernet + IPv4 + UDP + 100).
    assert.is(counted.bytes[classIndex('ipv4', 'udp')], BigInt(UDP4 * (14 + 20 + 8 + 100)), 'IPv4 UDP bytes sent');
    assert.is(counted.bytes[classIndex('ipv6', 'udp')], BigInt(UDP6 * (14 + 40 + 8 + 60)), 'IPv6 UDP bytes sent');
    assert.is(counted.packets[classIndex('ipv4', 'udp')], BigInt(UDP4), 'IPv4 UDP datagrams sent');
    assert.is(counted.packets[classIndex('ipv6', 'udp')], BigInt(UDP6), 'IPv6 UDP datagrams sent');
    assert.is(counted.packets[classIndex('ipv4', 'icmp')], BigInt(PINGS), 'echo requests sent');
    assert.is(counted.tcpFlags[1], BigInt(CONNECTIONS), 'one SYN per connection');
    assert.equal(counted.tcpSyn, [BigInt(CONNECTIONS), 0n], 'SYNs arrive here; the SYN-ACKs leave the other way');
    assert.ok(counted.tcpFlags[0]! >= BigInt(CONNECTIONS), 'at least one FIN per connection');
    assert.ok(counted.packets[classIndex('ipv4', 'tcp')]! >= BigInt(CONNECTIONS * 4), 'SYN, ACK, data, FIN at least');
    assert.is(sum(counted.malformed), 0n, 'real traffic is well formed');
    assert.is(sum(counted.sizeBuckets), rxPackets, 'size buckets sum to the packets');
  });
}

Attach('generic: jumbo frames land in the 1519-9000 and >9000 buckets', async () => {
  const pair = vethPair(cleanups, 'j', { mtu: 9500 });
  const program = loadProgram();
  linkTo(pair, program, 'generic');
  const start = await quietSnapshot(pair, program);
  ping(pair, pair.hostAddress, 3, 2000);
  ping(pair, pair.hostAddress, 2, 9200);
  const end = await quietSnapshot(pair, program);
  const counted = diffCounters(end.counters, start.counters);
  assert.is(counted.sizeBuckets[6], 3n, '2042-byte frames');
  assert.is(counted.sizeBuckets[7], 2n, '9242-byte frames');
  assert.is(sum(counted.packets), end.rx.packets - start.rx.packets);
});

Attach('native is refused on a veth whose MTU is too large for XDP, with a named error', () => {
  const pair = vethPair(cleanups, 'm', { mtu: 9500 });
  const program = loadProgram();
  try {
    linkTo(pair, program, 'native');
    assert.unreachable('native attach should fail with MTU 9500');
  } catch (err) {
    assert.instance(err, BpfError);
    assert.match((err as Error).message, `bpf_link_create failed for ${pair.host}`);
  }
  assert.is(libbpf().xdpQuery(pair.ifindex(), pair.host).attachMode, 'none');
});

Attach('closing the last link fd detaches: nothing is left on the interface', () => {
  const pair = vethPair(cleanups, 'd');
  const program = loadProgram();
  const fd = libbpf().linkCreateXdp(program.progFd, pair.ifindex(), XDP_FLAGS.generic, pair.host);
  assert.is(libbpf().xdpQuery(pair.ifindex(), pair.host).attachMode, 'generic');
  libbpf().closeFd(fd);
  assert.is(libbpf().xdpQuery(pair.ifindex(), pair.host).attachMode, 'none');
});

Attach.run();
