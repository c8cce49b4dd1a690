// Real attach on a veth pair, generic and native: counts of real traffic equal the kernel's own rx statistics, exactly.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { libbpf } from '../../src/bpf/libbpf.js';
import { sum, type InterfaceCounters } from '../../src/bpf/counter-layout.js';
import { BpfError } from '../../src/bpf/bpf-error.js';
import { classIndex } from '../fixtures/frames.js';
import { diffCounters } from '../fixtures/expected-counts.js';
import { LoadedProgram } from '../fixtures/loaded-program.js';
import { ip, VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';

const XDP_FLAGS = { generic: 2, native: 4 } as const;
const TRAFFIC = fileURLToPath(new URL('../../../test/fixtures/traffic.mjs', import.meta.url));
const ETH_HEADER = 14n;

interface Snapshot {
  rx: { packets: bigint; bytes: bigint };
  counters: InterfaceCounters;
}

/** Kernel stats and XDP counters read at one quiet moment: stats unchanged across the counter read. */
async function quietSnapshot(pair: VethPair, program: LoadedProgram): Promise<Snapshot> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const before = pair.rxStats();
    const counters = program.counters();
    const after = pair.rxStats();
    if (before.packets === after.packets && before.bytes === after.bytes) return { rx: before, counters };
    await sleep(20);
  }
  throw new Error(`${pair.host} never went quiet`);
}

async function withListener<T>(address: string, fn: (port: number) => Promise<T>): Promise<T> {
  const server = net.createServer((s) => s.resume().on('end', () => s.end()));
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  try {
    return await fn((server.address() as net.AddressInfo).port);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

const Attach = suite('attach');
let pair: VethPair | undefined;
let program: LoadedProgram | undefined;
let linkFd = -1;

Attach.before(() => requireRoot('attaching XDP'));
Attach.after.each(() => {
  if (linkFd >= 0) libbpf().closeFd(linkFd);
  linkFd = -1;
  program?.close();
  program = undefined;
  pair?.destroy();
  pair = undefined;
});

for (const mode of ['generic', 'native'] as const) {
  Attach(`${mode}: UDP, TCP, ICMP, IPv6 and ARP counted exactly as rx_packets / rx_bytes`, async () => {
    pair = new VethPair('a').create();
    ip('addr', 'add', 'fe80::1/64', 'dev', pair.host, 'nodad');
    pair.exec('ip', ['addr', 'add', 'fe80::2/64', 'dev', pair.peer, 'nodad']);
    program = new LoadedProgram();
    linkFd = libbpf().linkCreateXdp(program.progFd, pair.ifindex(), XDP_FLAGS[mode], pair.host);
    const query = libbpf().xdpQuery(pair.ifindex(), pair.host);
    assert.is(query.attachMode, mode);
    assert.is(mode === 'native' ? query.drvProgId : query.skbProgId, libbpf().progInfo(program.progFd, 'carnx').id);

    const start = await quietSnapshot(pair, program);
    const UDP4 = 40;
    const UDP6 = 25;
    const PINGS = 5;
    const CONNECTIONS = 6;
    pair.exec('node', [TRAFFIC, 'udp', pair.hostAddress, '9', String(UDP4), '100']);
    pair.exec('node', [TRAFFIC, 'udp', `fe80::1%${pair.peer}`, '9', String(UDP6), '60']);
    pair.exec('ping', ['-c', String(PINGS), '-i', '0.05', '-W', '1', '-q', pair.hostAddress]);
    await withListener(pair.hostAddress, async (port) => {
      await pair!.run('node', [TRAFFIC, 'tcp', pair!.hostAddress, String(port), String(CONNECTIONS), '300']);
    });
    await sleep(100);
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
  pair = new VethPair('j').create({ mtu: 9500 });
  program = new LoadedProgram();
  linkFd = libbpf().linkCreateXdp(program.progFd, pair.ifindex(), XDP_FLAGS.generic, pair.host);
  const start = await quietSnapshot(pair, program);
  pair.exec('ping', ['-c', '3', '-i', '0.05', '-W', '1', '-q', '-s', '2000', pair.hostAddress]);
  pair.exec('ping', ['-c', '2', '-i', '0.05', '-W', '1', '-q', '-s', '9200', pair.hostAddress]);
  const end = await quietSnapshot(pair, program);
  const counted = diffCounters(end.counters, start.counters);
  assert.is(counted.sizeBuckets[6], 3n, '2042-byte frames');
  assert.is(counted.sizeBuckets[7], 2n, '9242-byte frames');
  assert.is(sum(counted.packets), end.rx.packets - start.rx.packets);
});

Attach('native is refused on a veth whose MTU is too large for XDP, with a named error', () => {
  pair = new VethPair('m').create({ mtu: 9500 });
  program = new LoadedProgram();
  try {
    linkFd = libbpf().linkCreateXdp(program.progFd, pair.ifindex(), XDP_FLAGS.native, pair.host);
    assert.unreachable('native attach should fail with MTU 9500');
  } catch (err) {
    assert.instance(err, BpfError);
    assert.match((err as Error).message, `bpf_link_create failed for ${pair.host}`);
  }
  assert.is(libbpf().xdpQuery(pair.ifindex(), pair.host).attachMode, 'none');
});

Attach('closing the last link fd detaches: nothing is left on the interface', () => {
  pair = new VethPair('d').create();
  program = new LoadedProgram();
  linkFd = libbpf().linkCreateXdp(program.progFd, pair.ifindex(), XDP_FLAGS.generic, pair.host);
  assert.is(libbpf().xdpQuery(pair.ifindex(), pair.host).attachMode, 'generic');
  libbpf().closeFd(linkFd);
  linkFd = -1;
  assert.is(libbpf().xdpQuery(pair.ifindex(), pair.host).attachMode, 'none');
});

Attach.run();
