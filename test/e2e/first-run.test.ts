// A first run as a person does it: readable logs on a terminal, JSON on a pipe, and counts shown without a collector.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { agentArgs, spawnAgent, testBpffs, type AgentProcess } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { command } from '../fixtures/command.js';
import { reported } from '../fixtures/hooks.js';
import type { LogLine } from '../fixtures/json-log.js';
import { quietPair, vethPair, type VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { terminalAgent, type TerminalAgent } from '../fixtures/terminal.js';
import { sendUdp } from '../fixtures/traffic.js';
import { waitFor } from '../fixtures/wait.js';
import { formatBytes, formatCount, type InterfaceSummary } from '../../src/metrics/console-summary.js';

const FirstRun = suite('e2e: first run at a terminal and on a pipe');
const cleanups = new Cleanups();

FirstRun.before(reported(() => requireRoot('the e2e tests')));
FirstRun.after.each(() => cleanups.run());

/** A header value that must never reach the output, whatever the format. */
const SECRET = 'hunter2-first-run';
const ESC = String.fromCharCode(27);
/** pino-pretty's line: time, level, module, message, then the fields as JSON. */
const PRETTY = /^\[\d\d:\d\d:\d\d\] (INFO|WARN|ERROR|DEBUG): /;

function args(pair: VethPair, bpffs: ReturnType<typeof testBpffs>, extra: string[] = []): string[] {
  return agentArgs(bpffs, pair.host, ['--log-level', 'info', '--otlp-headers', `x-api-key=${SECRET}`, ...extra]);
}

const isJson = (line: string): boolean => {
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
};

FirstRun('on a terminal: readable lines by default, --log-format json forces JSON; the secret in neither', async () => {
  const pair = vethPair(cleanups, 'f');
  const bpffs = testBpffs(cleanups, 'first-run-tty');

  const pretty = terminalAgent(cleanups, args(pair, bpffs));
  await pretty.waitForLine(/INFO: agent: started/);
  const attached = await pretty.waitForLine((l) => l.includes('attach: attached') && l.includes(`"${pair.host}"`));
  assert.match(attached, PRETTY, 'time and level first');
  assert.is(await exitCodeOf(pretty), 0);
  const shown = pretty.lines;
  assert.equal(shown.filter(isJson), [], 'no JSON line on the terminal');
  assert.ok(
    shown.every((l) => PRETTY.test(l) || /^\s+(error|err|stack):/.test(l)),
    `every line is a pretty log line:\n${shown.join('\n')}`,
  );
  assert.ok(pretty.raw.includes(`${ESC}[`), 'coloured on a terminal');
  assert.ok(
    shown.some((l) => /INFO: agent: stopped/.test(l)),
    'the last line before exit is shown (no line lost at exit)',
  );
  assert.not.ok(pretty.raw.includes(SECRET), 'the header value is not shown');
  assert.ok(pretty.raw.includes('[redacted]'), 'the header is shown as redacted');

  const json = terminalAgent(cleanups, args(pair, bpffs, ['--log-format', 'json']));
  await json.waitForLine((l) => isJson(l) && (JSON.parse(l) as LogLine).msg === 'started');
  assert.is(await exitCodeOf(json), 0);
  assert.equal(
    json.lines.filter((l) => !isJson(l)),
    [],
    'every line is JSON with --log-format json',
  );
  assert.ok(json.lines.some((l) => (JSON.parse(l) as LogLine).msg === 'stopped'));
  assert.not.ok(json.raw.includes(SECRET), 'the header value is not in the JSON either');
});

FirstRun(
  'on a pipe: JSON by default with no summary; CARNX_LOG_FORMAT=pretty gives text (and its summary)',
  async () => {
    const pair = vethPair(cleanups, 'g');
    const bpffs = testBpffs(cleanups, 'first-run-pipe');
    const fast = ['--export-interval-ms', '300'];

    const json = spawnAgent(cleanups, args(pair, bpffs, fast));
    await json.waitForMsg('started');
    // Several collections pass: none of them is summarized on a pipe.
    // A failed export (nothing listens on the endpoint) means a collection ran; a few more run in the next second.
    await json.waitForLog((l) => l.module === 'metrics' && l.level !== 'info');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.is((await json.stop()).code, 0);
    assert.equal(
      json.lines.filter((l) => l.level === 'raw'),
      [],
      'every line on the pipe is JSON',
    );
    assert.equal(
      json.lines.filter((l) => l.module === 'counts'),
      [],
      'no summary on a pipe by default',
    );
    assert.not.ok(json.stdout.includes(SECRET), 'the header value is not logged');

    const pretty = spawnAgent(cleanups, args(pair, bpffs, fast), { env: { CARNX_LOG_FORMAT: 'pretty' } });
    await pretty.waitUntil('a pretty summary line', () => pretty.lines.find((l) => / INFO: counts: /.test(l.msg)));
    assert.is((await pretty.stop()).code, 0);
    const text = pretty.lines.map((l) => l.msg);
    assert.equal(
      pretty.lines.filter((l) => l.level !== 'raw'),
      [],
      'no JSON line with CARNX_LOG_FORMAT=pretty',
    );
    assert.ok(
      text.some((l) => PRETTY.test(l) && l.includes('agent: started')),
      text.join('\n'),
    );
    assert.not.ok(pretty.stdout.includes(`${ESC}[`), 'no colour codes on a pipe');
    assert.not.ok(pretty.stdout.includes(SECRET), 'the header value is not logged');
  },
);

/** rx and tx of the host side as the kernel counts them (the witness). */
function kernelStats(pair: VethPair): Record<'rxPackets' | 'rxBytes' | 'txPackets' | 'txBytes', bigint> {
  const read = (name: string) => BigInt(readFileSync(`/sys/class/net/${pair.host}/statistics/${name}`, 'utf8').trim());
  return {
    rxPackets: read('rx_packets'),
    rxBytes: read('rx_bytes'),
    txPackets: read('tx_packets'),
    txBytes: read('tx_bytes'),
  };
}

/** What the summary shows for one direction: exact packets, bytes as shown (text) or exact (JSON). */
interface Shown {
  rx: { packets: string; bytes: string };
  tx: { packets: string; bytes: string };
}

/** The last summary line of `iface` on a terminal, as text. */
function lastPrettySummary(agent: TerminalAgent, iface: string): Shown | undefined {
  const line = agent.lines.filter((l) => l.includes(`INFO: counts: ${iface}: `)).at(-1);
  if (!line) return undefined;
  const part = (dir: string) => {
    const m = new RegExp(`${dir} ([\\d,]+) packets?, ([\\d.]+ [kMGTPE]?B)`).exec(line);
    return m ? { packets: m[1]!, bytes: m[2]! } : { packets: '?', bytes: line };
  };
  return { rx: part('rx'), tx: part('tx') };
}

/** The last summary line of `iface` on a pipe (log.summary on), from its JSON fields. */
function lastJsonSummary(agent: AgentProcess, iface: string): Shown | undefined {
  const line = agent.lines
    .filter((l) => l.module === 'counts' && (l.summary as InterfaceSummary)?.interface === iface)
    .at(-1);
  if (!line) return undefined;
  const s = line.summary as InterfaceSummary;
  const part = (d: InterfaceSummary['receive']) => ({ packets: String(d?.packets), bytes: String(d?.bytes) });
  return { rx: part(s.receive), tx: part(s.transmit) };
}

/**
 * Known traffic into a quiet pair whose two sides speak IPv4 only (no ND, MLD or router solicitations arriving on
 * their own): 40 UDP datagrams and the ARP that precedes them in, the ARP reply and ICMP port-unreachables out.
 */
async function summaryMatchesKernel(
  pair: VethPair,
  nativeReceive: () => boolean,
  shown: () => Shown | undefined,
  render: { packets: (n: bigint) => string; bytes: (n: bigint) => string },
): Promise<Shown> {
  const before = kernelStats(pair);
  pair.exec('ip', ['link', 'set', pair.peer, 'up']);
  sendUdp(pair, pair.hostAddress, 40, 100);
  const expected = (): Shown => {
    const now = kernelStats(pair);
    const rxPackets = now.rxPackets - before.rxPackets;
    // veth leaves the Ethernet header out of rx_bytes while a native XDP program is attached; carnx counts it.
    const rxBytes = now.rxBytes - before.rxBytes + (nativeReceive() ? 14n * rxPackets : 0n);
    return {
      rx: { packets: render.packets(rxPackets), bytes: render.bytes(rxBytes) },
      tx: {
        packets: render.packets(now.txPackets - before.txPackets),
        bytes: render.bytes(now.txBytes - before.txBytes),
      },
    };
  };
  let last: { want: Shown; got: Shown | undefined } | undefined;
  try {
    // The summary follows each collection (every 500 ms): wait until the latest one has caught up with the kernel.
    return await waitFor(
      'the summary to show what the kernel counted',
      () => {
        last = { want: expected(), got: shown() };
        return JSON.stringify(last.want) === JSON.stringify(last.got) && last.got;
      },
      15_000,
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}: kernel ${JSON.stringify(last?.want)}, shown ${JSON.stringify(last?.got)}`,
    );
  }
}

function ipv4Only(pair: VethPair): void {
  command('sysctl', ['-qw', `net.ipv6.conf.${pair.host}.disable_ipv6=1`]);
  pair.exec('sysctl', ['-qw', `net.ipv6.conf.${pair.peer}.disable_ipv6=1`]);
}

FirstRun('on a terminal, with no collector: the summary shows the exact counts of known traffic', async () => {
  const pair = quietPair(cleanups, 's');
  ipv4Only(pair);
  const bpffs = testBpffs(cleanups, 'first-run-summary');
  const agent = terminalAgent(cleanups, args(pair, bpffs, ['--export-interval-ms', '500']));
  const attached = await agent.waitForLine((l) => l.includes('attach: attached') && l.includes('"receive"'));
  const native = /"mode":"native"/.test(attached);
  await agent.waitForLine((l) => l.includes(`INFO: counts: ${pair.host}: rx 0 packets, 0 B`));

  const shown = await summaryMatchesKernel(
    pair,
    () => native,
    () => lastPrettySummary(agent, pair.host),
    {
      packets: (n) => formatCount(Number(n)),
      bytes: (n) => formatBytes(Number(n)),
    },
  );
  assert.ok(Number(shown.rx.packets.replace(/,/g, '')) >= 40, `the 40 datagrams are in: ${shown.rx.packets}`);
  assert.ok(Number(shown.tx.packets.replace(/,/g, '')) >= 1, `the replies are out: ${shown.tx.packets}`);
  const rated = agent.lines.filter((l) => l.includes(`counts: ${pair.host}: `)).at(-1)!;
  assert.match(rated, /rx [\d,]+ packets?, [^(;]+ \([\d.,]+ packets\/s, [\d.]+ [kMG]?bit\/s\); tx /, 'with rates');
  assert.is(await exitCodeOf(agent), 0);
});

FirstRun('on a pipe with --log-summary on: the JSON summary carries the exact bytes', async () => {
  const pair = quietPair(cleanups, 'j');
  ipv4Only(pair);
  const bpffs = testBpffs(cleanups, 'first-run-summary-json');
  const agent = spawnAgent(cleanups, args(pair, bpffs, ['--export-interval-ms', '500', '--log-summary', 'on']));
  const attached = await agent.waitForMsg('attached', { interface: pair.host, direction: 'receive' });
  await agent.waitForLog((l) => l.module === 'counts' && (l.summary as InterfaceSummary)?.interface === pair.host);

  const shown = await summaryMatchesKernel(
    pair,
    () => attached.mode === 'native',
    () => lastJsonSummary(agent, pair.host),
    {
      packets: String,
      bytes: String,
    },
  );
  assert.ok(Number(shown.rx.packets) >= 40, `the 40 datagrams are in: ${shown.rx.packets}`);
  // 40 datagrams of 100 bytes: 142-byte frames.
  assert.ok(Number(shown.rx.bytes) >= 40 * 142, `their bytes are in: ${shown.rx.bytes}`);
  assert.is((await agent.stop()).code, 0);
});

async function exitCodeOf(agent: TerminalAgent): Promise<number | null> {
  return (await agent.stop()).code;
}

FirstRun('the terminal hangs up under a running agent: it stops cleanly, detached and unpinned', async () => {
  const pair = vethPair(cleanups, 'h');
  const bpffs = testBpffs(cleanups, 'first-run-hangup');
  const agent = terminalAgent(cleanups, args(pair, bpffs, ['--xdp-mode', 'generic']));
  await agent.waitForLine(/INFO: agent: started/);
  assert.is(command('ip', ['-d', 'link', 'show', pair.host]).includes('xdpgeneric'), true, 'attached');
  const pid = await agent.hangUp();
  // Before the fix the SIGHUP's reload line hit EIO, an unhandled 'error' killed the agent, and its program stayed.
  await waitFor('the agent to exit after the hang-up', () => !existsSync(`/proc/${pid}`), 20_000);
  assert.not.ok(command('ip', ['-d', 'link', 'show', pair.host]).includes('xdpgeneric'), 'no program left');
  assert.not.ok(existsSync(`${bpffs.path}/carnx/v1`), 'no pins left');
});

FirstRun.run();
