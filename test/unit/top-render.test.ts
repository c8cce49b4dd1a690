// carnx top's screen from two known reads, its number formats, cutting to the terminal, and the terminal it borrows.
import { EventEmitter } from 'node:events';
import type { ReadStream, WriteStream } from 'node:tty';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emptyCounters, type InterfaceCounters } from '../../src/bpf/counter-layout.js';
import { TopTerminal } from '../../src/cli/top-terminal.js';
import { fit, si, topFrame, total } from '../../src/cli/top-view.js';
import type { PinnedCounters, PinnedReading } from '../../src/reader/pinned-counters.js';

const SINCE = 1_700_000_000_000_000_000n;
const MAX_U64 = 2n ** 64n - 1n;

function reading(c: InterfaceCounters, since = SINCE): PinnedReading {
  return {
    ifname: 'eth0',
    direction: 'receive',
    hook: 'xdp-native',
    ifindex: 2,
    countingSinceUnixNs: since,
    counters: c,
  };
}

function at(seconds: number, readings: PinnedReading[]): PinnedCounters {
  const ns = BigInt(seconds * 1e9);
  return { readAtUnixNs: SINCE + ns, readAtMonotonicNs: ns, readings, unread: [] };
}

/** ipv4 udp and arp at known totals. */
function traffic(udp: bigint, arp: bigint, syn: bigint, synAck: bigint): InterfaceCounters {
  const c = emptyCounters();
  c.packets[1] = udp;
  c.bytes[1] = udp * 242n;
  c.packets[10] = arp;
  c.bytes[10] = arp * 42n;
  c.tcpFlags[1] = syn + synAck;
  c.tcpFlags[4] = synAck;
  c.tcpSyn = [syn, synAck];
  return c;
}

test('rates between two reads, share of packets/s, exact totals; the columns line up', () => {
  const before = at(10, [reading(traffic(100n, 4n, 1n, 0n))]);
  const now = at(12, [reading(traffic(2100n, 4n, 5n, 2n))]); // 2 s later: 1000 udp/s, no arp
  const screen = topFrame({ bpffs: '/sys/fs/bpf', previous: before, current: now, width: 80, height: 40 });
  assert.equal(screen, [
    'carnx top  /sys/fs/bpf                                        22:13:32Z  q quits',
    '',
    'eth0 receive (xdp-native), counting since 22:13:20Z',
    '  protocol          pkt/s       bit/s  share          packets           bytes',
    '  all              1.00 k      1.94 M   100%             2104          508368',
    '  ipv4 udp         1.00 k      1.94 M   100%             2100          508200',
    '  arp none              0           0     0%                4             168',
    '  tcp flags/s fin 0  syn 3  rst 0  psh 0  ack 1  urg 0  ece 0  cwr 0',
    '  per second  syn 2  syn_ack 1  malformed 0',
    '  totals      syn 5  syn_ack 2  malformed l2 0  malformed l3 0  malformed l4 0',
  ]);
});

test('no rate on the first screen, across a re-attach (new counting start) or a counter that went down', () => {
  const first = topFrame({
    bpffs: '/b',
    previous: undefined,
    current: at(1, [reading(traffic(5n, 0n, 0n, 0n))]),
    width: 80,
    height: 40,
  });
  assert.match(first[4] ?? '', /^ {2}all +- +- +- +5 +1210$/);
  const reattached = topFrame({
    bpffs: '/b',
    previous: at(1, [reading(traffic(500n, 0n, 0n, 0n))]),
    current: at(2, [reading(traffic(5n, 0n, 0n, 0n), SINCE + 1n)]),
    width: 80,
    height: 40,
  });
  assert.match(reattached[4] ?? '', /^ {2}all +- +- +- +5 +1210$/);
  const down = topFrame({
    bpffs: '/b',
    previous: at(1, [reading(traffic(500n, 0n, 0n, 0n))]),
    current: at(2, [reading(traffic(5n, 0n, 0n, 0n))]),
    width: 80,
    height: 40,
  });
  assert.match(down[4] ?? '', /^ {2}all +- +- +- +5 +1210$/);
});

test('nothing pinned (the agent went away) and unread directions are said on screen', () => {
  const none = topFrame({ bpffs: '/b', previous: undefined, current: at(1, []), width: 80, height: 40 });
  assert.equal(none.slice(1), [
    '',
    'no carnx counters are pinned under /b',
    'waiting for an agent (npm start, or carnx run), or quit and pass --bpffs-path',
  ]);

  const unread = topFrame({
    bpffs: '/b',
    previous: undefined,
    current: { ...at(1, []), unread: [{ ifname: 'eth1', direction: 'transmit', reason: 'attach not complete' }] },
    width: 80,
    height: 40,
  });
  assert.equal(unread.slice(1), ['', 'eth1 transmit: not read: attach not complete']);
});

test('within 80 columns at the largest values; cut to a narrow or short terminal with a note of what is hidden', () => {
  const c = emptyCounters();
  for (const field of ['packets', 'bytes', 'tcpFlags', 'tcpSyn', 'malformed', 'sizeBuckets'] as const)
    c[field] = c[field].map(() => MAX_U64);
  const big = { ...reading(c), ifname: 'x'.repeat(15), hook: 'tc-ingress' as const };
  const previous = at(0, [{ ...big, counters: emptyCounters() }]);
  const screen = topFrame({
    bpffs: '/sys/fs/bpf/some/longer/path',
    previous,
    current: at(0.001, [big]),
    width: 200,
    height: 100,
  });
  assert.equal(
    screen.filter((l) => l.length > 80),
    [],
  );
  assert.ok(
    screen.some((l) => l.includes('18.4 E')),
    screen.join('\n'),
  );
  const small = topFrame({ bpffs: '/b', previous, current: at(1, [big]), width: 40, height: 6 });
  assert.is(small.length, 6);
  assert.ok(small.every((l) => l.length <= 40));
  assert.match(small[5] ?? '', /^\.\.\. \d+ more lines: enlarge the termin/);
  assert.equal(fit(['a', 'b'], 80, 1), ['... 2 more lines: enlarge the terminal']);
});

test('number formats: SI prefixes in six characters, exact totals while they fit', () => {
  assert.equal([undefined, 0, 0.4, 12, 999.4, 999.5, 1234, 99_949, 99_950, 999_499, 2.5e9, 1.8e19, 1e22].map(si), [
    '-',
    '0',
    '0',
    '12',
    '999',
    '1.00 k',
    '1.23 k',
    '99.9 k',
    '100 k',
    '999 k',
    '2.50 G',
    '18.0 E',
    '10000 E',
  ]);
  assert.is(total(1234567890123456n, 17), '1234567890123456');
  assert.is(total(12345678901234567n, 17), '12.3 P');
});

/** A stand-in terminal that records what is done to it. */
function fakeTerminal() {
  const written: string[] = [];
  const raw: boolean[] = [];
  const input = Object.assign(new EventEmitter(), {
    setRawMode: (on: boolean) => raw.push(on),
    resume: () => undefined,
    pause: () => undefined,
  }) as unknown as ReadStream;
  const output = { write: (s: string) => written.push(s), columns: 100, rows: 30 } as unknown as WriteStream;
  return { written, raw, terminal: new TopTerminal(input, output) };
}

test('the terminal: alternate screen, hidden cursor and raw keys on enter; all given back once, also at exit', () => {
  const { written, raw, terminal } = fakeTerminal();
  const exitListeners = process.listenerCount('exit');
  terminal.enter();
  assert.equal(written, ['\x1b[?1049h\x1b[?25l']);
  assert.equal(raw, [true]);
  assert.is(process.listenerCount('exit'), exitListeners + 1, 'restores even if the process exits first');
  terminal.draw(['one', 'two']);
  assert.is(written[1], '\x1b[1;1Hone\x1b[K\x1b[2;1Htwo\x1b[K\x1b[J');
  terminal.restore();
  terminal.restore();
  assert.equal(written.slice(2), ['\x1b[?25h\x1b[?1049l'], 'cursor shown, alternate screen left, once');
  assert.equal(raw, [true, false]);
  assert.is(process.listenerCount('exit'), exitListeners);
  assert.equal([terminal.columns, terminal.rows], [100, 30]);
});

test.run();
