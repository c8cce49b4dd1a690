// `carnx top` in a real terminal (tmux) beside a running agent: exact totals and live rates for known traffic, and
// the terminal given back (alternate screen left, cursor shown) on q, Ctrl-C and SIGTERM.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MAIN, startAgent, testBpffs, type AgentProcess } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { commandResult } from '../fixtures/command.js';
import { reported } from '../fixtures/hooks.js';
import { quietPair, up, type VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { tmuxPane, type TmuxPane } from '../fixtures/tmux.js';
import { steadyTraffic, tcpConnections } from '../fixtures/traffic.js';
import type { TestBpffs } from '../fixtures/agent-process.js';

const Top = suite('e2e: carnx top');
const cleanups = new Cleanups();

Top.before(reported(() => requireRoot('the e2e tests')));
Top.after.each(() => cleanups.run());

const UDP_SIZE = 200;
const UDP_FRAME = UDP_SIZE + 42;
const TCP = 3;

async function agentOn(tag: string): Promise<{ pair: VethPair; bpffs: TestBpffs; agent: AgentProcess }> {
  const pair = quietPair(cleanups, tag);
  const bpffs = testBpffs(cleanups, `top-${tag}`);
  const agent = startAgent(cleanups, bpffs, pair.host, ['--log-level', 'info']);
  await agent.waitForMsg('attached', { interface: pair.host, hook: 'tc-egress' });
  await agent.waitUntil('the receive side attached', () =>
    agent.lines.some((l) => l.msg === 'attached' && l.interface === pair.host && l.hook !== 'tc-egress'),
  );
  return { pair, bpffs, agent };
}

function top(bpffs: TestBpffs): TmuxPane {
  return tmuxPane(cleanups, [process.execPath, MAIN, 'top', '--bpffs-path', bpffs.path], 100, 50);
}

/** The rows of one interface and direction's block, up to the next blank row. */
function block(screen: string[], ifname: string, direction: string): string[] {
  const start = screen.findIndex((row) => row.startsWith(`${ifname} ${direction} (`));
  if (start < 0) return [];
  const end = screen.indexOf('', start);
  return screen.slice(start, end < 0 ? undefined : end);
}

/** A protocol row's columns: pkt/s, bit/s, share, packets, bytes (rates may carry an SI prefix: "1.23 k"). */
function columns(row: string): { pps: string; bps: string; share: string; packets: string; bytes: string } {
  const m = /^ {2}\S+(?: \S+)? +(-|[\d.]+(?: [kMGTPE])?) +(-|[\d.]+(?: [kMGTPE])?) +(-|\d+%) +(\d+) +(\d+)$/.exec(row);
  if (!m) throw new Error(`not a protocol row: ${JSON.stringify(row)}`);
  return { pps: m[1]!, bps: m[2]!, share: m[3]!, packets: m[4]!, bytes: m[5]! };
}

function terminalState(pane: TmuxPane): { alternate: string; cursor: string } {
  return { alternate: pane.format('#{alternate_on}'), cursor: pane.format('#{cursor_flag}') };
}

Top(
  'live rates while traffic flows, exact totals after, 80 columns; q quits with exit 0 and the terminal restored',
  async () => {
    const { pair, bpffs, agent } = await agentOn('t');
    const pane = top(bpffs);
    await pane.waitForRow(
      'the receive block',
      new RegExp(`^${pair.host} receive \\((xdp-native|xdp-generic|tc-ingress)\\)`),
    );
    assert.equal(terminalState(pane), { alternate: '1', cursor: '0' }, 'alternate screen on, cursor hidden');
    const quiet = block(pane.capture(), pair.host, 'receive');
    assert.is(
      columns(quiet.find((r) => r.startsWith('  all '))!).packets,
      '0',
      'nothing counted before the link is up',
    );

    up(pair);
    const traffic = steadyTraffic(pair, 20, UDP_SIZE, 100);
    // While it flows, the UDP row shows a rate above zero and carries (nearly) all the packets per second.
    const live = await pane.waitForRow('a live UDP rate', /^ {2}ipv4 udp +[1-9]/);
    assert.ok(Number.parseFloat(columns(live).pps) > 0, live);
    const sent = await traffic.stop();
    await tcpConnections(pair, pair.hostAddress, TCP, 100);

    // After it: the exact totals, and the rate back to 0 once a whole second passed without a datagram.
    const udpRow = await pane.waitForRow(
      'the UDP totals and a zero rate',
      new RegExp(`^ {2}ipv4 udp +0 +0 +\\S+ +${sent} +${sent * UDP_FRAME}$`),
    );
    const { share: _, ...udp } = columns(udpRow);
    assert.equal(udp, { pps: '0', bps: '0', packets: String(sent), bytes: String(sent * UDP_FRAME) });
    await pane.waitForRow('the SYN-ACKs sent', new RegExp(`^ {2}totals +syn 0 +syn_ack ${TCP} `));
    const screen = pane.capture();
    const rx = block(screen, pair.host, 'receive');
    const tx = block(screen, pair.host, 'transmit');
    assert.ok(tx[0]?.startsWith(`${pair.host} transmit (tc-egress)`), tx.join('\n'));
    assert.match(rx.find((r) => r.startsWith('  totals ')) ?? '', new RegExp(`^ {2}totals +syn ${TCP} +syn_ack 0 `));
    // The "all" row is the sum of the protocol rows (every frame is in exactly one).
    for (const b of [rx, tx]) {
      const rows = b.filter((r) => /^ {2}(ipv4|ipv6|arp|other) /.test(r)).map(columns);
      const all = columns(b.find((r) => r.startsWith('  all '))!);
      assert.is(
        String(rows.reduce((n, r) => n + BigInt(r.packets), 0n)),
        all.packets,
        `all = sum of rows:\n${b.join('\n')}`,
      );
    }
    // The pinned counters say the same (the link is quiet now: nothing but kernel chatter could still come).
    assert.is(
      columns(rx.find((r) => r.startsWith('  ipv4 udp'))!).packets,
      String(bpffs.read(pair.host).counters.packets[1]),
    );
    const wide = screen.filter((row) => row.length > 80);
    assert.equal(wide, [], 'every row within 80 columns in a 100-column terminal');

    pane.sendKeys('q');
    assert.is(await pane.exitStatus(), 0, 'q exits 0');
    assert.equal(terminalState(pane), { alternate: '0', cursor: '1' }, 'alternate screen left, cursor shown');
    assert.ok(agent.running, 'the agent kept running (top took no lock from it)');
    assert.is((await agent.stop()).code, 0);
  },
);

Top('Ctrl-C and SIGTERM also quit with exit 0 and give the terminal back; --help; nothing pinned', async () => {
  const { pair, bpffs } = await agentOn('c');
  const byKey = top(bpffs);
  await byKey.waitForRow('the first screen', new RegExp(`^${pair.host} receive `));
  byKey.sendKeys('C-c');
  assert.is(await byKey.exitStatus(), 0, 'Ctrl-C exits 0');
  assert.equal(terminalState(byKey), { alternate: '0', cursor: '1' }, 'restored after Ctrl-C');

  const bySignal = top(bpffs);
  await bySignal.waitForRow('the first screen', new RegExp(`^${pair.host} receive `));
  assert.equal(terminalState(bySignal), { alternate: '1', cursor: '0' });
  process.kill(bySignal.commandPid(), 'SIGTERM');
  assert.is(await bySignal.exitStatus(), 0, 'SIGTERM exits 0');
  assert.equal(terminalState(bySignal), { alternate: '0', cursor: '1' }, 'restored after SIGTERM');

  const help = commandResult(process.execPath, [MAIN, 'top', '--help']);
  assert.is(help.status, 0);
  assert.match(help.stdout, /^usage: carnx top /);
  const empty = commandResult(process.execPath, [MAIN, 'top', '--bpffs-path', `${bpffs.path}/carnx/v1/${pair.host}`]);
  assert.is(empty.status, 3);
  assert.match(empty.stderr, /^carnx: no carnx counters are pinned under .*: start the agent/);
  assert.is(empty.stderr.trim().split('\n').length, 1, 'one line');
});

Top.run();
