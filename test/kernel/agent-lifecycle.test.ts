// The agent process on veths: attach, restart and adopt, atomic upgrade, foreign programs, fallback, churn, signals, reload.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { libbpf } from '../../src/bpf/libbpf.js';
import { interfacePins } from '../../src/attach/pin-paths.js';
import { AgentProcess, TestBpffs, agentArgs } from '../fixtures/agent-process.js';
import { LoadedProgram, PASS_OBJECT } from '../fixtures/loaded-program.js';
import { ip, VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';

const XDP_SOURCE = fileURLToPath(new URL('../../../xdp/carnx.bpf.c', import.meta.url));
const XDP_FLAGS_SKB_MODE = 2;
const TRAFFIC = fileURLToPath(new URL('../../../test/fixtures/traffic.mjs', import.meta.url));

const Lifecycle = suite('agent lifecycle');
const cleanups: Array<() => void | Promise<void>> = [];
let work = '';

function track<T extends { destroy(): void }>(thing: T): T {
  cleanups.push(() => thing.destroy());
  return thing;
}

function startAgent(args: string[], env: NodeJS.ProcessEnv = {}): AgentProcess {
  const agent = new AgentProcess(args, env);
  cleanups.push(async () => {
    await agent.stop('SIGKILL');
  });
  return agent;
}

function xdpOn(ifname: string): string | undefined {
  return /\b(xdpgeneric|xdpdrv|xdpoffload|xdp)\b/.exec(ip('-o', 'link', 'show', 'dev', ifname))?.[1];
}

/** XDP links on an interface, counted by bpftool's list of links and each link's own info. */
function xdpLinksOn(ifindex: number): number {
  const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{
    id: number;
    type: string;
  }>;
  return links
    .filter((l) => l.type === 'xdp')
    .filter((l) => {
      const fd = libbpf().linkFdById(l.id);
      try {
        return libbpf().linkInfo(fd, `link ${l.id}`).ifindex === ifindex;
      } finally {
        libbpf().closeFd(fd);
      }
    }).length;
}

function sendUdp(pair: VethPair, count: number): void {
  pair.exec('node', [TRAFFIC, 'udp', pair.hostAddress, '9', String(count), '100']);
}

Lifecycle.before(() => {
  requireRoot('the agent');
  work = mkdtempSync(join(tmpdir(), 'carnx-lifecycle-'));
});
Lifecycle.after.each(async () => {
  // Agents first (they hold links), then pins and namespaces; every step runs even if one fails.
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // keep cleaning
    }
  }
});
Lifecycle.after(() => rmSync(work, { recursive: true, force: true }));

Lifecycle('attaches, counts, and on SIGTERM detaches and unpins everything', async () => {
  const pair = track(new VethPair('l').create());
  const bpffs = track(new TestBpffs('term'));
  const agent = startAgent(agentArgs(bpffs, pair.host, ['--xdp-mode', 'generic']));
  await agent.waitForMsg('attached', { interface: pair.host });
  assert.is(xdpOn(pair.host), 'xdpgeneric');
  sendUdp(pair, 30);
  assert.ok(bpffs.read(pair.host).counters.packets[1]! >= 30n, 'UDP counted through the pinned map');
  const exit = await agent.stop('SIGTERM');
  assert.is(exit.code, 0);
  assert.is(xdpOn(pair.host), undefined, 'no XDP program left');
  assert.not.ok(existsSync(`${bpffs.path}/carnx`), 'no pins or pin directories left');
});

Lifecycle('SIGKILL, traffic while down, restart: adopted, nothing lost, start time kept, one attachment', async () => {
  const pair = track(new VethPair('k').create());
  const bpffs = track(new TestBpffs('kill'));
  const first = startAgent(agentArgs(bpffs, pair.host));
  await first.waitForMsg('attached', { interface: pair.host });
  sendUdp(pair, 20);
  const before = bpffs.read(pair.host);
  const { linkId } = bpffs.linkId(pair.host);
  await first.stop('SIGKILL');
  sendUdp(pair, 25); // nobody running: the pinned link keeps counting
  const second = startAgent(agentArgs(bpffs, pair.host));
  await second.waitForMsg('adopted pinned attachment', { interface: pair.host });
  const after = bpffs.read(pair.host);
  assert.is(after.counters.packets[1]! - before.counters.packets[1]!, 25n, 'the 25 datagrams sent while down');
  assert.is(after.meta.countingSinceUnixNs, before.meta.countingSinceUnixNs, 'start time unchanged');
  assert.is(bpffs.linkId(pair.host).linkId, linkId, 'the same link, adopted');
  assert.is(xdpLinksOn(pair.ifindex()), 1, 'exactly one XDP link on the interface');
  assert.is((await second.stop()).code, 0);
});

Lifecycle('a changed program is swapped in atomically: same link, same counters, new program', async () => {
  const pair = track(new VethPair('u').create());
  const bpffs = track(new TestBpffs('upgrade'));
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
  const first = startAgent(agentArgs(bpffs, pair.host, ['--xdp-keep-attached-on-exit']));
  await first.waitForMsg('attached', { interface: pair.host });
  sendUdp(pair, 10);
  const before = bpffs.linkId(pair.host);
  const counted = bpffs.read(pair.host).counters.packets[1];
  assert.is((await first.stop()).code, 0);
  assert.ok(existsSync(interfacePins(bpffs.path, pair.host).link), 'keepAttachedOnExit kept the pins');
  const second = startAgent(agentArgs(bpffs, pair.host, ['--xdp-object', upgraded]));
  const line = await second.waitForMsg('upgraded program in place', { interface: pair.host });
  const after = bpffs.linkId(pair.host);
  assert.is(after.linkId, before.linkId, 'the link was updated, not replaced');
  assert.is.not(after.progId, before.progId, 'a new program runs');
  assert.is(line.progId, after.progId);
  sendUdp(pair, 10);
  assert.is(bpffs.read(pair.host).counters.packets[1], counted! + 10n, 'the counters carried over');
  assert.is((await second.stop()).code, 0);
});

Lifecycle('a foreign XDP program is left alone and reported; the agent keeps running', async () => {
  const mine = track(new VethPair('f').create());
  const foreign = track(new VethPair('g').create());
  // Another tool's program, attached over netlink the way `ip link set ... xdp` does.
  const other = new LoadedProgram(PASS_OBJECT, 'xdp_pass');
  libbpf().xdpAttach(foreign.ifindex(), other.progFd, XDP_FLAGS_SKB_MODE, foreign.host);
  cleanups.push(() => {
    libbpf().xdpDetach(foreign.ifindex(), XDP_FLAGS_SKB_MODE, foreign.host);
    other.close();
  });
  const foreignId = libbpf().xdpQuery(foreign.ifindex(), foreign.host).progId;
  const bpffs = track(new TestBpffs('foreign'));
  const agent = startAgent(agentArgs(bpffs, mine.host, ['--interfaces-include', foreign.host]));
  const refused = await agent.waitForMsg('not counting on interface', { interface: foreign.host });
  assert.is(refused.foreignProgId, foreignId);
  assert.is(refused.reason, 'foreign-program');
  await agent.waitForMsg('attached', { interface: mine.host });
  assert.is(libbpf().xdpQuery(foreign.ifindex(), foreign.host).progId, foreignId, 'the foreign program is untouched');
  assert.is((await agent.stop()).code, 0);
  assert.is(libbpf().xdpQuery(foreign.ifindex(), foreign.host).progId, foreignId, 'and still there after carnx exits');
});

Lifecycle('auto mode falls back to generic when native is refused (veth MTU too large)', async () => {
  const pair = track(new VethPair('m').create({ mtu: 9500 }));
  const bpffs = track(new TestBpffs('auto'));
  const agent = startAgent(agentArgs(bpffs, pair.host, ['--xdp-mode', 'auto']));
  const fell = await agent.waitForMsg('fell back to generic XDP', { interface: pair.host });
  assert.match(String(fell.reason), 'native');
  const attached = await agent.waitForMsg('attached', { interface: pair.host });
  assert.is(attached.mode, 'generic');
  assert.is(xdpOn(pair.host), 'xdpgeneric');
  assert.is((await agent.stop()).code, 0);
});

Lifecycle('interfaces that appear are attached within a rescan; vanished ones leave no pins', async () => {
  const bpffs = track(new TestBpffs('churn'));
  const first = track(new VethPair('c').create());
  const agent = startAgent(agentArgs(bpffs, 'cx*c*h'));
  await agent.waitForMsg('attached', { interface: first.host });
  const second = track(new VethPair('c').create());
  await agent.waitForMsg('attached', { interface: second.host }, 5000);
  first.destroy();
  await agent.waitForMsg('interface gone or deselected: detached', { interface: first.host }, 5000);
  assert.not.ok(existsSync(interfacePins(bpffs.path, first.host).dir), 'the vanished interface left no pins');
  assert.ok(existsSync(interfacePins(bpffs.path, second.host).link));
  assert.is((await agent.stop()).code, 0);
});

Lifecycle('SIGHUP reloads the interface selection without losing counts', async () => {
  const a = track(new VethPair('h').create());
  const b = track(new VethPair('h').create());
  const bpffs = track(new TestBpffs('hup'));
  const file = join(work, 'reload.yaml');
  writeFileSync(file, `interfaces:\n  include: [${a.host}]\n`);
  const agent = startAgent([
    ...agentArgs(bpffs, a.host).filter(
      (_, i, all) => all[i] !== '--interfaces-include' && all[i - 1] !== '--interfaces-include',
    ),
    '--config',
    file,
  ]);
  await agent.waitForMsg('attached', { interface: a.host });
  sendUdp(a, 12);
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

Lifecycle('a second SIGINT during shutdown exits at once with 130', async () => {
  const pair = track(new VethPair('s').create());
  const bpffs = track(new TestBpffs('sigint'));
  // A blackhole collector address makes the last export wait for its timeout: time for a second signal.
  const agent = startAgent(
    agentArgs(bpffs, pair.host, ['--export-shutdown-timeout-ms', '20000', '--otlp-timeout-ms', '20000']),
  );
  await agent.waitForMsg('started');
  agent.child.kill('SIGINT');
  await agent.waitForMsg('stopping');
  agent.child.kill('SIGINT');
  const exit = await agent.exited;
  assert.ok(exit.code === 130 || exit.code === 0, `exit ${exit.code}`);
});

Lifecycle('start-up failures: one clear line, a documented exit code, nothing attached', async () => {
  const pair = track(new VethPair('e').create());
  const bpffs = track(new TestBpffs('errors'));
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
    const agent = startAgent(c.args);
    const exit = await agent.exited;
    assert.is(exit.code, c.code, `${c.args.join(' ')}\n${agent.stderr}`);
    const lines = agent.stderr.trim().split('\n');
    assert.match(lines[0]!, c.line);
    assert.not.match(agent.stderr, /\n\s+at /, 'no stack trace');
    assert.is(xdpOn(pair.host), undefined, 'nothing attached');
  }
});

Lifecycle.run();
