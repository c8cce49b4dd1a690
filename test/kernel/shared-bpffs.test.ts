// bpffs shared with others: one agent per bpffs.path (the lock), and a pin tree or pinned maps carnx did not make.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { libbpf } from '../../src/bpf/libbpf.js';
import { interfacePins } from '../../src/attach/pin-paths.js';
import { agentArgs, spawnAgent, startAgent, testBpffs, type AgentProcess } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { pinTree, xdpLinksOn, xdpOn } from '../fixtures/kernel-objects.js';
import { vethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { classIndex } from '../fixtures/frames.js';
import { sendUdp } from '../fixtures/traffic.js';
import { reported } from '../fixtures/hooks.js';

const HOST_NOT_READY = 3;
const Shared = suite('shared bpffs');
const cleanups = new Cleanups();
const udp = classIndex('ipv4', 'udp');

Shared.before(reported(() => requireRoot('the agent')));
Shared.after.each(() => cleanups.run());

/** Runs a carnx command to its exit, bounded: one that keeps running is a failure too. */
async function refusedRun(agent: AgentProcess): Promise<{ code: number | null; stderr: string }> {
  const exit = await agent.exitWithin(15_000);
  return { code: exit.code, stderr: agent.stderr };
}

Shared('a second agent on the same bpffs.path exits 3 naming the first, touching nothing; so does detach', async () => {
  const pair = vethPair(cleanups, 'o');
  const bpffs = testBpffs(cleanups, 'lock');
  const first = startAgent(cleanups, bpffs, pair.host, ['--xdp-mode', 'generic']);
  await first.waitForMsg('started');
  sendUdp(pair, pair.hostAddress, 10, 100);
  const tree = pinTree(bpffs.path);
  const link = bpffs.linkId(pair.host);

  const second = await refusedRun(spawnAgent(cleanups, agentArgs(bpffs, pair.host, ['--xdp-mode', 'generic'])));
  assert.is(second.code, HOST_NOT_READY, second.stderr);
  assert.is(
    second.stderr,
    `carnx: another carnx (pid ${first.child.pid}) is running on bpffs.path ${bpffs.path}: stop that one first ` +
      `('kill ${first.child.pid}' or 'systemctl stop carnx'), or give this one its own bpffs.path\n`,
    'one line naming the running agent',
  );
  const detach = await refusedRun(spawnAgent(cleanups, ['detach', '--bpffs-path', bpffs.path]));
  assert.is(detach.code, HOST_NOT_READY, detach.stderr);
  assert.match(detach.stderr, `another carnx (pid ${first.child.pid})`);

  assert.equal(pinTree(bpffs.path), tree, 'pins untouched');
  assert.equal(bpffs.linkId(pair.host), link, 'the same link and program');
  assert.ok(first.running, 'the first agent keeps running');
  sendUdp(pair, pair.hostAddress, 15, 100);
  assert.is(bpffs.read(pair.host).counters.packets[udp], 25n, 'and keeps counting');

  assert.is((await first.stop()).code, 0);
  const third = startAgent(cleanups, bpffs, pair.host, ['--xdp-mode', 'generic']);
  await third.waitForMsg('attached', { interface: pair.host });
  assert.is((await third.stop()).code, 0, 'once the first has stopped, another can start');
});

Shared('a symlinked carnx/ pin directory is refused with one line and exit 3, nothing attached', async () => {
  const pair = vethPair(cleanups, 's');
  const bpffs = testBpffs(cleanups, 'symlink');
  mkdirSync(`${bpffs.path}/planted/v1`, { recursive: true });
  symlinkSync(`${bpffs.path}/planted`, `${bpffs.path}/carnx`);
  const run = await refusedRun(spawnAgent(cleanups, agentArgs(bpffs, pair.host)));
  assert.is(run.code, HOST_NOT_READY, run.stderr);
  assert.is(
    run.stderr,
    `carnx: pin directory ${bpffs.path}/carnx is a symlink: remove it (carnx will not follow it)\n`,
  );
  assert.is(xdpOn(pair.host), undefined, 'nothing attached');
  assert.equal(pinTree(`${bpffs.path}/planted`), ['v1/'], 'nothing pinned through the symlink');
});

Shared('pinned maps of the wrong shape are not adopted: dropped, attached fresh, counted from zero', async () => {
  const pair = vethPair(cleanups, 'w');
  const bpffs = testBpffs(cleanups, 'shape');
  const first = startAgent(cleanups, bpffs, pair.host, ['--xdp-mode', 'generic', '--interfaces-directions', 'receive']);
  await first.waitForMsg('attached', { interface: pair.host });
  sendUdp(pair, pair.hostAddress, 10, 100);
  await first.stop('SIGKILL'); // pins stay
  // Put the meta map (an array, not per-CPU, of another value size) where the counters map belongs.
  const pins = interfacePins(bpffs.path, pair.host);
  const lib = libbpf();
  const metaFd = lib.getPinned(pins.meta);
  try {
    lib.closeFd(lib.getPinned(pins.counters));
    unlinkSync(pins.counters);
    lib.pin(metaFd, pins.counters);
  } finally {
    lib.closeFd(metaFd);
  }
  const { linkId } = bpffs.linkId(pair.host);

  const second = startAgent(cleanups, bpffs, pair.host, [
    '--xdp-mode',
    'generic',
    '--interfaces-directions',
    'receive',
  ]);
  const dropped = await second.waitForMsg('dropping pinned maps of the wrong shape', { interface: pair.host });
  assert.match(String(dropped.reason), 'type 2, expected 6');
  await second.waitForMsg('attached', { interface: pair.host });
  assert.is(second.lines.filter((l) => l.msg === 'adopted pinned attachment').length, 0, 'not adopted');
  assert.is.not(bpffs.linkId(pair.host).linkId, linkId, 'a new link');
  assert.equal(xdpLinksOn(pair.ifindex()).length, 1, 'exactly one XDP link on the interface');
  sendUdp(pair, pair.hostAddress, 7, 100);
  assert.is(bpffs.read(pair.host).counters.packets[udp], 7n, 'fresh counters, counted exactly');
  assert.is((await second.stop()).code, 0);
});

Shared.run();
