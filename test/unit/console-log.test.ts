// The log a person sees: JSON or pretty by terminal and setting, secrets redacted in both, and the count summary lines.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emptyCounters } from '../../src/bpf/counter-layout.js';
import { chooseLogFormat, colorsWanted, createLogger, type LogFormat } from '../../src/log/logger.js';
import {
  MAX_SUMMARY_LINES,
  TrafficSummary,
  wantSummary,
  formatBitRate,
  formatBytes,
  formatCount,
  formatRate,
  summaryLine,
} from '../../src/metrics/console-summary.js';
import type { Direction, InterfaceSnapshot } from '../../src/reader/interface-snapshot.js';

const ESC = String.fromCharCode(27);

/** A logger whose output is kept, in `format`. */
function captured(format: LogFormat, level = 'info'): { logger: ReturnType<typeof createLogger>; out: string[] } {
  const out: string[] = [];
  const logger = createLogger(level, { write: (s: string) => void out.push(s) }, { format, colors: false });
  return { logger, out };
}

test('log.format: auto is pretty on a terminal and JSON elsewhere; json and pretty win either way', () => {
  assert.is(chooseLogFormat('auto', true), 'pretty');
  assert.is(chooseLogFormat('auto', false), 'json');
  assert.is(chooseLogFormat('json', true), 'json');
  assert.is(chooseLogFormat('json', false), 'json');
  assert.is(chooseLogFormat('pretty', true), 'pretty');
  assert.is(chooseLogFormat('pretty', false), 'pretty');
});

test('log.summary: auto follows the format (on for pretty, off for JSON); on and off win', () => {
  assert.is(wantSummary('auto', 'pretty'), true);
  assert.is(wantSummary('auto', 'json'), false);
  assert.is(wantSummary('on', 'json'), true);
  assert.is(wantSummary('off', 'pretty'), false);
});

test('colours only on a terminal, and not with NO_COLOR or TERM=dumb', () => {
  assert.is(colorsWanted(true, { TERM: 'xterm' }), true);
  assert.is(colorsWanted(false, { TERM: 'xterm' }), false);
  assert.is(colorsWanted(true, { TERM: 'xterm', NO_COLOR: '1' }), false);
  assert.is(colorsWanted(true, { TERM: 'dumb' }), false);
});

test('json: one parseable line per call, module and fields kept', () => {
  const { logger, out } = captured('json');
  logger.child({ module: 'attach' }).info({ interface: 'eth0', mode: 'native' }, 'attached');
  assert.is(out.length, 1);
  const line = JSON.parse(out[0]!) as Record<string, unknown>;
  assert.is(line.msg, 'attached');
  assert.is(line.level, 'info');
  assert.is(line.module, 'attach');
  assert.is(line.interface, 'eth0');
});

test('pretty: one readable line per call, level, module and message first, fields after, no pid', () => {
  const { logger, out } = captured('pretty');
  logger.child({ module: 'attach' }).warn({ interface: 'eth0' }, 'fell back to tc-ingress');
  assert.is(out.length, 1);
  const text = out[0]!;
  assert.throws(() => JSON.parse(text), 'not JSON');
  assert.match(text, /^\[\d\d:\d\d:\d\d\] WARN: attach: fell back to tc-ingress \{"interface":"eth0"\}\n$/);
  assert.not.match(text, /pid/);
  assert.not.ok(text.includes(`${ESC}[`), 'no colours when not asked for');
});

test('pretty: a summary line shows its message only, its fields stay in the JSON', () => {
  const pretty = captured('pretty');
  const json = captured('json');
  for (const { logger } of [pretty, json])
    logger.info({ summary: { interface: 'eth0', receive: { packets: 3 } } }, 'eth0: rx');
  assert.match(pretty.out[0]!, /INFO: eth0: rx\n$/);
  assert.equal((JSON.parse(json.out[0]!) as { summary: unknown }).summary, {
    interface: 'eth0',
    receive: { packets: 3 },
  });
});

test('secrets are redacted in both formats, however deep the headers sit', () => {
  for (const format of ['json', 'pretty'] as const) {
    const { logger, out } = captured(format);
    logger.info({ config: { otlp: { headers: { 'x-api-key': 'hunter2' } } } }, 'starting carnx');
    logger.child({ module: 'metrics' }).warn({ headers: { authorization: 'Bearer hunter2' } }, 'export failed');
    logger.info({ request: { metadata: { token: 'hunter2' } } }, 'sent');
    const text = out.join('');
    assert.not.match(text, /hunter2/, `${format}: the secret is not in the output`);
    assert.is(text.split('[redacted]').length - 1, 3, `${format}: each secret is replaced`);
  }
});

test('pretty honours the level and colours on request', () => {
  const out: string[] = [];
  const logger = createLogger('warn', { write: (s: string) => void out.push(s) }, { format: 'pretty', colors: true });
  logger.info('hidden');
  logger.error('shown');
  assert.is(out.length, 1);
  assert.ok(out[0]!.includes(`${ESC}[31mERROR`), out[0]);
});

test('numbers: exact counts with separators, bytes and bit rates in decimal units, small rates with a decimal', () => {
  assert.is(formatCount(0), '0');
  assert.is(formatCount(999), '999');
  assert.is(formatCount(1000), '1,000');
  assert.is(formatCount(1234567), '1,234,567');
  assert.is(formatCount(2 ** 53), '9,007,199,254,740,992');
  assert.is(formatBytes(0), '0 B');
  assert.is(formatBytes(999), '999 B');
  assert.is(formatBytes(1000), '1 kB');
  assert.is(formatBytes(5680), '5.68 kB');
  assert.is(formatBytes(98_304), '98.3 kB');
  assert.is(formatBytes(123_456_789), '123 MB');
  assert.is(formatBytes(999_999), '1 MB');
  assert.is(formatBytes(4.2e12), '4.2 TB');
  assert.is(formatBitRate(9600), '9.6 kbit/s');
  assert.is(formatBitRate(1.25e9), '1.25 Gbit/s');
  assert.is(formatRate(0, 'packets/s'), '0 packets/s');
  assert.is(formatRate(0.4, 'packets/s'), '0.4 packets/s');
  assert.is(formatRate(12.4, 'packets/s'), '12 packets/s');
  assert.is(formatRate(15000, 'packets/s'), '15,000 packets/s');
});

test('a summary line: each direction counted, the rate only when there is one', () => {
  assert.is(
    summaryLine({
      interface: 'eth0',
      receive: { packets: 1234, bytes: 98_304, packetsPerSecond: 12, bitsPerSecond: 9600 },
      transmit: { packets: 1, bytes: 90 },
    }),
    'eth0: rx 1,234 packets, 98.3 kB (12 packets/s, 9.6 kbit/s); tx 1 packet, 90 B',
  );
  assert.is(summaryLine({ interface: 'ens5', transmit: { packets: 0, bytes: 0 } }), 'ens5: tx 0 packets, 0 B');
});

function snapshot(
  name: string,
  direction: Direction,
  packets: number,
  bytes: number,
  extra: Partial<InterfaceSnapshot> = {},
): InterfaceSnapshot {
  const counters = emptyCounters();
  // Spread over two classes: the summary must add them up.
  counters.packets[0] = BigInt(packets - Math.floor(packets / 3));
  counters.packets[10] = BigInt(Math.floor(packets / 3));
  counters.bytes[1] = BigInt(bytes - 100);
  counters.bytes[10] = 100n;
  return {
    name,
    ifindex: 7,
    direction,
    hook: direction === 'receive' ? 'xdp-native' : 'tc-egress',
    countingSinceUnixNs: 1_000n,
    counters,
    ...extra,
  };
}

test('summarize: totals over every class; rates from the previous collection of the same counting', () => {
  let now = 0;
  const { logger } = captured('json');
  const summary = new TrafficSummary(logger, () => now);
  const first = summary.summarize([snapshot('eth1', 'receive', 300, 30_000), snapshot('eth0', 'receive', 10, 1_000)]);
  assert.equal(first, [
    { interface: 'eth0', receive: { packets: 10, bytes: 1_000 } },
    { interface: 'eth1', receive: { packets: 300, bytes: 30_000 } },
  ]);
  now = 2_000;
  const second = summary.summarize([
    snapshot('eth0', 'receive', 30, 3_000),
    snapshot('eth0', 'transmit', 5, 500),
    // Re-created: a new counting, whose rate cannot be taken against the old one.
    snapshot('eth1', 'receive', 4, 400, { countingSinceUnixNs: 9_000n }),
    // Released: the rest is what is counted now.
    snapshot('eth2', 'receive', 99, 9_900, { final: true }),
  ]);
  assert.equal(second, [
    {
      interface: 'eth0',
      receive: { packets: 30, bytes: 3_000, packetsPerSecond: 10, bitsPerSecond: 8_000 },
      transmit: { packets: 5, bytes: 500 },
    },
    { interface: 'eth1', receive: { packets: 4, bytes: 400 } },
  ]);
});

test('observe logs one line per interface, caps a long list at the busiest, and says when nothing is counted', () => {
  let now = 0;
  const { logger, out } = captured('json');
  const summary = new TrafficSummary(logger, () => now);
  const many = (scale: number) =>
    Array.from({ length: MAX_SUMMARY_LINES + 3 }, (_, i) =>
      snapshot(`if${i}`, 'receive', (i + 1) * scale, 100 * scale),
    );
  summary.observe(many(1));
  now = 1_000;
  summary.observe(many(2));
  const lines = out.map((l) => JSON.parse(l) as { msg: string; module: string; summary?: { interface: string } });
  assert.is(lines.length, 2 * (MAX_SUMMARY_LINES + 1));
  assert.ok(lines.every((l) => l.module === 'counts'));
  const lastRound = lines.slice(MAX_SUMMARY_LINES + 1);
  assert.is(lastRound[0]!.summary!.interface, `if${MAX_SUMMARY_LINES + 2}`, 'the busiest first');
  assert.is(lastRound[0]!.msg, 'if12: rx 26 packets, 200 B (13 packets/s, 800 bit/s)');
  assert.is(lastRound[MAX_SUMMARY_LINES]!.msg, `and 3 more interfaces (busiest ${MAX_SUMMARY_LINES} shown)`);
  out.length = 0;
  summary.observe([]);
  assert.equal(
    out.map((l) => (JSON.parse(l) as { msg: string }).msg),
    ['counting on no interface yet'],
  );
});

test('observe never throws: a bad snapshot is logged and the collection goes on', () => {
  const { logger, out } = captured('json');
  const summary = new TrafficSummary(logger);
  const broken = { ...snapshot('eth0', 'receive', 1, 1), counters: undefined } as unknown as InterfaceSnapshot;
  summary.observe([broken]);
  assert.is((JSON.parse(out[0]!) as { msg: string }).msg, 'could not summarize the counts');
});

test.run();
