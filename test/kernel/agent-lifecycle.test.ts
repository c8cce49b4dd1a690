// The agent process on veths: attach, restart and adopt, atomic upgrade, foreign programs, fallback, churn, signals, reload.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { libbpf } from '../../src/bpf/libbpf.js';
import { interfacePins } from '../../src/attach/pin-paths.js';
import { agentArgs, spawnAgent, startAgent, testBpffs } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { xdpLinksOn, xdpOn } from '../fixtures/kernel-objects.js';
import { attachForeignProgram } from '../fixtures/loaded-program.js';
import { vethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { classIndex } from '../fixtures/frames.js';
import { ping, sendUdp } from '../fixtures/traffic.js';
import { reported } from '../fixtures/hooks.js';
import { waitFor } from '../fixtures/wait.js';

const XDP_SOURCE = fileURLToPath(new URL('../../../xdp/carnx.bpf.c', import.meta.url));

const Lifecycle = suite('agent lifecycle');
const cleanups = new Cleanups();
let work = '';

Lifecycle.before(
  reported(() => {
    requireRoot('the agent');
    work = mkdtempSync(join(tmpdir(), 'carnx-lifecycle-'));
  }),
);
// Agents first (they hold links), then pins and namespaces; every step runs even if one fails.
Lifecycle.after.each(() => cleanups.run());
Lifecycle.after(() => rmSync(work, { recursive: true, force: true }));

Lifecycle('attaches, counts, and on SIGTERM detaches and unpins everything', async () => {
  const pair = vethPair(cleanups, 'l');
  const bpffs = testBpffs(cleanups, 'term');
  const agent = startAgent(cleanups, bpffs, pair.host, ['--xdp-mode', 'generic']);
  await agent.waitForMsg('attached', { interface: pair.host });
  assert.is(xdpOn(pair.host), 'xdpgeneric');
  sendUdp(pair, pair.hostAddress, 30, 100);
  assert.ok(bpffs.read(pair.host).counters.packets[1]! >= 30n, 'UDP counted through the pinned map');
  const exit = await agent.stop('SIGTERM');
  assert.is(exit.code, 0);
  assert.is(xdpOn(pair.host), undefined, 'no XDP program left');
  assert.not.ok(existsSync(`${bpffs.path}/carnx`), 'no pins or pin directories left');
});

Lifecycle('SIGKILL, traffic while down, restart: adopted, nothing lost, start time kept, one attachment', async () => {
  const pair = vethPair(cleanups, 'k');
  const bpffs = testBpffs(cleanups, 'kill');
  const first = startAgent(cleanups, bpffs, pair.host);
  await first.waitForMsg('attached', { interface: pair.host });
  sendUdp(pair, pair.hostAddress, 20, 100);
  const before = bpffs.read(pair.host);
  const { linkId } = bpffs.linkId(pair.host);
  await first.stop('SIGKILL');
  sendUdp(pair, pair.hostAddress, 25, 100); // nobody running: the pinned link keeps counting
  const second = startAgent(cleanups, bpffs, pair.host);
  await second.waitForMsg('adopted pinned attachment', { interface: pair.host });
  const after = bpffs.read(pair.host);
  assert.is(after.counters.packets[1]! - before.counters.packets[1]!, 25n, 'the 25 datagrams sent while down');
  assert.is(after.meta.countingSinceUnixNs, before.meta.countingSinceUnixNs, 'start time unchanged');
  assert.is(bpffs.linkId(pair.host).linkId, linkId, 'the same link, adopted');
  assert.is(xdpLinksOn(pair.ifindex()).length, 1, 'exactly one XDP link on the interface');
  assert.is((await second.stop()).code, 0);
});

Lifecycle(
  "a name with a dot (a VLAN sub-interface's) is counted both ways, and its pins adopted after a restart",
  async () => {
    const pair = vethPair(cleanups, 'd', { host: `cx${process.pid % 10000}d.100` });
    const bpffs = testBpffs(cleanups, 'dotted');
    const icmp = classIndex('ipv4', 'icmp');
    const first = startAgent(cleanups, bpffs, pair.host);
    for (const direction of ['receive', 'transmit'])
      await first.waitForMsg('attached', { interface: pair.host, direction });
    // Echo requests arrive on the host side (receive), the replies leave it (transmit): the same number each way.
    ping(pair, pair.hostAddress, 5);
    const before = { rx: bpffs.read(pair.host, 'receive'), tx: bpffs.read(pair.host, 'transmit') };
    assert.is(before.rx.counters.packets[icmp], 5n, 'echo requests counted');
    assert.is(before.tx.counters.packets[icmp], 5n, 'echo replies counted');
    const links = { rx: bpffs.linkId(pair.host, 'receive'), tx: bpffs.linkId(pair.host, 'transmit') };
    await first.stop('SIGKILL');
    ping(pair, pair.hostAddress, 3); // nobody running: the pinned links keep counting
    const second = startAgent(cleanups, bpffs, pair.host);
    for (const direction of ['receive', 'transmit'])
      await second.waitForMsg('adopted pinned attachment', { interface: pair.host, direction });
    assert.equal(bpffs.linkId(pair.host, 'receive'), links.rx, 'the same receive link and program');
    assert.equal(bpffs.linkId(pair.host, 'transmit'), links.tx, 'the same transmit link and program');
    const after = { rx: bpffs.read(pair.host, 'receive'), tx: bpffs.read(pair.host, 'transmit') };
    assert.is(after.rx.counters.packets[icmp], 8n, 'receive counters carried over, and counted while down');
    assert.is(after.tx.counters.packets[icmp], 8n, 'transmit counters carried over, and counted while down');
    assert.is(after.rx.meta.countingSinceUnixNs, before.rx.meta.countingSinceUnixNs, 'start time unchanged');
    assert.is(second.lines.filter((l) => l.msg === 'not counting on interface').length, 0, 'no refusal');
    assert.is((await second.stop()).code, 0);
    assert.is(xdpLinksOn(pair.ifindex()).length, 0, 'no XDP link left');
    assert.is(xdpOn(pair.host), undefined, 'no XDP program left');
    assert.not.ok(existsSync(`${bpffs.path}/carnx`), 'no pins or pin directories left');
  },
);

Lifecycle('a changed program is swapped in atomically: same link, same counters, new program', async () => {
  const pair = vethPair(cleanups, 'u');
  const bpffs = testBpffs(cleanups, 'upgrade');
  // The same source with another extension-header bound is a different program (new tag) with the same maps.
  const upgraded = join(work, 'carnx-upgraded.bpf.o');
  const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
  execFileSync('clang', [
    '-O2',
    '-g',
    '-target',
    'bpf',
    '-DCARNX_MAX_IPV6_EXT_HEADERS=5',
    `-I/usr/include/${arch}-linux-gnu`,
    '-c',
    XDP_SOURCE,
    '-o',
    upgraded,
  ]);
  const first = startAgent(cleanups, bpffs, pair.host, ['--xdp-keep-attached-on-exit']);
  await first.waitForMsg('attached', { interface: pair.host });
  sendUdp(pair, pair.hostAddress, 10, 100);
  const before = bpffs.linkId(pair.host);
  const counted = bpffs.read(pair.host).counters.packets[1];
  assert.is((await first.stop()).code, 0);
  const pins = interfacePins(bpffs.path, pair.host);
  assert.ok(existsSync(pins.link), 'keepAttachedOnExit kept the pins');
  // What an upgrade cut short between pinning and renaming leaves: a prog_next pin. It must not block this one.
  const leftover = libbpf().getPinned(pins.prog);
  libbpf().pin(leftover, pins.progNext);
  libbpf().closeFd(leftover);
  const second = startAgent(cleanups, bpffs, pair.host, ['--xdp-object', upgraded]);
  const line = await second.waitForMsg('upgraded program in place', { interface: pair.host });
  const after = bpffs.linkId(pair.host);
  assert.is(after.linkId, before.linkId, 'the link was updated, not replaced');
  assert.is.not(after.progId, before.progId, 'a new program runs');
  assert.is(line.progId, after.progId);
  sendUdp(pair, pair.hostAddress, 10, 100);
  assert.is(bpffs.read(pair.host).counters.packets[1], counted! + 10n, 'the counters carried over');
  assert.not.ok(existsSync(pins.progNext), 'the leftover prog_next was replaced and renamed away');
  assert.is((await second.stop()).code, 0);
});

Lifecycle(
  'a link pinned without its maps (an attach cut short) is dropped and the interface attached anew',
  async () => {
    const pair = vethPair(cleanups, 'x');
    const bpffs = testBpffs(cleanups, 'cutshort');
    const first = startAgent(cleanups, bpffs, pair.host, [
      '--xdp-keep-attached-on-exit',
      '--interfaces-directions',
      'receive',
    ]);
    await first.waitForMsg('attached', { interface: pair.host });
    assert.is((await first.stop()).code, 0);
    const pins = interfacePins(bpffs.path, pair.host);
    unlinkSync(pins.meta);
    const second = startAgent(cleanups, bpffs, pair.host, ['--interfaces-directions', 'receive']);
    await second.waitForMsg('dropping pins: the counters or meta pin is missing', { interface: pair.host });
    await second.waitForMsg('attached', { interface: pair.host });
    assert.ok(existsSync(pins.meta), 'a complete set of pins again');
    assert.is(xdpLinksOn(pair.ifindex()).length, 1, 'one XDP link: the old one went with its pin');
    sendUdp(pair, pair.hostAddress, 4, 100);
    assert.is(bpffs.read(pair.host).counters.packets[1], 4n, 'counting from zero on the new attachment');
    assert.is((await second.stop()).code, 0);
  },
);

Lifecycle(
  'a foreign XDP program is left alone: native mode reports and skips it, auto counts beside it at TC',
  async () => {
    const mine = vethPair(cleanups, 'f');
    const foreign = vethPair(cleanups, 'g');
    const foreignId = attachForeignProgram(cleanups, foreign);
    const bpffs = testBpffs(cleanups, 'foreign');
    const beside = startAgent(cleanups, bpffs, foreign.host, ['--xdp-mode', 'auto']);
    const fell = await beside.waitForMsg('fell back to tc-ingress', { interface: foreign.host });
    assert.match(String(fell.reason), `held by program id ${foreignId}`);
    assert.is((await beside.waitForMsg('attached', { interface: foreign.host })).hook, 'tc-ingress');
    assert.is(libbpf().xdpQuery(foreign.ifindex(), foreign.host).progId, foreignId, 'the foreign program still runs');
    assert.is((await beside.stop()).code, 0);
    const agent = startAgent(cleanups, bpffs, mine.host, [
      '--interfaces-include',
      foreign.host,
      '--xdp-mode',
      'native',
    ]);
    const refused = await agent.waitForMsg('not counting on interface', { interface: foreign.host });
    assert.is(refused.foreignProgId, foreignId);
    assert.is(refused.reason, 'foreign-program');
    await agent.waitForMsg('attached', { interface: mine.host });
    assert.is(libbpf().xdpQuery(foreign.ifindex(), foreign.host).progId, foreignId, 'the foreign program is untouched');
    assert.is((await agent.stop()).code, 0);
    assert.is(
      libbpf().xdpQuery(foreign.ifindex(), foreign.host).progId,
      foreignId,
      'and still there after carnx exits',
    );
  },
);

Lifecycle(
  'auto mode falls back to TC ingress, never generic XDP, when native is refused (veth MTU too large)',
  async () => {
    const pair = vethPair(cleanups, 'm', { mtu: 9500 });
    const bpffs = testBpffs(cleanups, 'auto');
    const agent = startAgent(cleanups, bpffs, pair.host, ['--xdp-mode', 'auto']);
    const fell = await agent.waitForMsg('fell back to tc-ingress', { interface: pair.host });
    assert.match(String(fell.reason), 'native');
    const attached = await agent.waitForMsg('attached', { interface: pair.host });
    assert.is(attached.hook, 'tc-ingress');
    assert.is(xdpOn(pair.host), undefined, 'no XDP program at all: GRO stays on');
    assert.is((await agent.stop()).code, 0);
  },
);

Lifecycle('interfaces that appear are attached within a rescan; vanished ones leave no pins', async () => {
  const bpffs = testBpffs(cleanups, 'churn');
  const first = vethPair(cleanups, 'c');
  const agent = startAgent(cleanups, bpffs, 'cx*c*h');
  await agent.waitForMsg('attached', { interface: first.host });
  const second = vethPair(cleanups, 'c');
  await agent.waitForMsg('attached', { interface: second.host }, 5000);
  first.destroy();
  await agent.waitForMsg('interface gone or deselected: detached', { interface: first.host }, 5000);
  assert.not.ok(existsSync(interfacePins(bpffs.path, first.host).dir), 'the vanished interface left no pins');
  assert.ok(existsSync(interfacePins(bpffs.path, second.host).link));
  assert.is((await agent.stop()).code, 0);
});

Lifecycle('SIGHUP reloads the interface selection without losing counts', async () => {
  const a = vethPair(cleanups, 'h');
  const b = vethPair(cleanups, 'h');
  const bpffs = testBpffs(cleanups, 'hup');
  const file = join(work, 'reload.yaml');
  writeFileSync(file, `interfaces:\n  include: [${a.host}]\n`);
  const agent = spawnAgent(cleanups, [
    ...agentArgs(bpffs, a.host).filter(
      (_, i, all) => all[i] !== '--interfaces-include' && all[i - 1] !== '--interfaces-include',
    ),
    '--config',
    file,
  ]);
  await agent.waitForMsg('attached', { interface: a.host });
  sendUdp(a, a.hostAddress, 12, 100);
  writeFileSync(file, `interfaces:\n  include: [${a.host}, ${b.host}]\n`);
  const mark = agent.lines.length;
  agent.child.kill('SIGHUP');
  await agent.waitForMsg('attached', { interface: b.host }, 5000, mark);
  await agent.waitForMsg('configuration reloaded', {}, 5000, mark);
  assert.is(bpffs.read(a.host).counters.packets[1], 12n, 'counts on the first interface are untouched');
  writeFileSync(file, 'interfaces:\n  include: 42\n');
  const bad = agent.lines.length;
  agent.child.kill('SIGHUP');
  const refused = await agent.waitForMsg('reload refused: keeping the running configuration', {}, 5000, bad);
  assert.ok(Array.isArray(refused.problems));
  assert.ok(existsSync(interfacePins(bpffs.path, b.host).link), 'a bad reload changes nothing');
  assert.is((await agent.stop()).code, 0);
});

Lifecycle('a second SIGINT during shutdown exits at once with 130, while the last export still waits', async () => {
  const pair = vethPair(cleanups, 's');
  const bpffs = testBpffs(cleanups, 'sigint');
  // A collector that accepts connections and never answers: the last export waits for its 20 s deadline.
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  cleanups.defer(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const { port } = silent.address() as AddressInfo;
  const agent = startAgent(cleanups, bpffs, pair.host, [
    '--otlp-endpoint',
    `http://127.0.0.1:${port}`,
    '--export-shutdown-timeout-ms',
    '20000',
    '--otlp-timeout-ms',
    '20000',
  ]);
  await agent.waitForMsg('started');
  agent.child.kill('SIGINT');
  await agent.waitForMsg('stopping');
  await waitFor('the last export to connect to the silent collector', () => sockets.size > 0, 5_000);
  const second = Date.now();
  agent.child.kill('SIGINT');
  const exit = await agent.exited;
  const tookMs = Date.now() - second;
  assert.is(exit.code, 130, 'the second signal cut the shutdown short');
  assert.ok(tookMs < 3_000, `exited ${tookMs} ms after the second signal, not at the export deadline`);
});

Lifecycle('start-up failures: one clear line, a documented exit code, nothing attached', async () => {
  const pair = vethPair(cleanups, 'e');
  const bpffs = testBpffs(cleanups, 'errors');
  const corrupt = join(work, 'corrupt.bpf.o');
  writeFileSync(corrupt, 'not an ELF file');
  const cases: Array<{ args: string[]; code: number; line: RegExp }> = [
    { args: agentArgs(bpffs, 'no-such-interface-*'), code: 5, line: /no interface matches interfaces\.include/ },
    {
      args: agentArgs(bpffs, pair.host, ['--xdp-object', corrupt]),
      code: 4,
      line: /could not load xdp\.object .*corrupt\.bpf\.o/,
    },
    {
      args: agentArgs(bpffs, pair.host, ['--xdp-object', join(work, 'missing.o')]),
      code: 4,
      line: /xdp\.object .*missing\.o does not exist/,
    },
    {
      args: agentArgs(bpffs, pair.host, ['--bpffs-path', work]),
      code: 3,
      line: /bpffs\.path .* is not a bpf filesystem/,
    },
    {
      args: agentArgs(bpffs, pair.host, ['--xdp-mode', 'sideways']),
      code: 2,
      line: /^carnx: config: xdp\.mode: must be one of/,
    },
  ];
  for (const c of cases) {
    const agent = spawnAgent(cleanups, c.args);
    const exit = await agent.exited;
    assert.is(exit.code, c.code, `${c.args.join(' ')}\n${agent.stderr}`);
    const lines = agent.stderr.trim().split('\n');
    assert.match(lines[0]!, c.line);
    assert.not.match(agent.stderr, /\n\s+at /, 'no stack trace');
    assert.is(xdpOn(pair.host), undefined, 'nothing attached');
  }
});

Lifecycle.run();
