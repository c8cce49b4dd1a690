// Many interfaces attached at once: each whole and its own, counting exactly, adopted on restart, failures isolated.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interfacePins } from '../../src/attach/pin-paths.js';
import { startAgent, testBpffs, type AgentProcess, type TestBpffs } from '../fixtures/agent-process.js';
import { compileBpf, fixtureSource } from '../fixtures/bpf-compile.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { classIndex } from '../fixtures/frames.js';
import { reported } from '../fixtures/hooks.js';
import { bpfIdMark, carnxObjects, liveSetProblems, xdpOn, type BpfIdMark } from '../fixtures/kernel-objects.js';
import { attachForeignProgram } from '../fixtures/loaded-program.js';
import { type VethPair, vethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { sendUdp } from '../fixtures/traffic.js';
import { waitFor } from '../fixtures/wait.js';

const Concurrent = suite('concurrent attach');
const cleanups = new Cleanups();
const UDP = classIndex('ipv4', 'udp');
/** More interfaces than the agent attaches at once on any test machine's few cores, so attaches overlap and queue. */
const MANY = 8;

Concurrent.before(reported(() => requireRoot('the agent')));
Concurrent.after.each(() => cleanups.run());

/** Pairs whose host sides `<tag>` alone matches: `cx<pid><tag><n>h`. */
function pairs(tag: string, count: number, options: { mtu?: number } = {}): VethPair[] {
  return Array.from({ length: count }, () => vethPair(cleanups, tag, options));
}

const includeOf = (tag: string) => `cx${process.pid % 10000}${tag}*`;

/** UDP datagrams counted on each pair's receive side. */
const udpOn = (bpffs: TestBpffs, list: VethPair[]) => list.map((p) => bpffs.read(p.host).counters.packets[UDP]!);

/** Exactly one link, program, counters map and meta map per interface and direction (objects are freed lazily). */
async function assertOneSetEach(mark: BpfIdMark, list: VethPair[], agent: AgentProcess, directions: number) {
  const ifindexes = list.map((p) => p.ifindex());
  let problems: string[] = [];
  await waitFor(
    'one live set per interface',
    () => {
      problems = liveSetProblems(carnxObjects(mark, ifindexes, [agent.child.pid!]), ifindexes, directions);
      return problems.length === 0;
    },
    10_000,
  ).catch(() => undefined);
  assert.equal(problems, [], 'per interface and direction: 1 link, its program, 1 counters and 1 meta map');
}

Concurrent(
  '8 interfaces attached at once: each its own objects, exact counts; a restart adopts all, nothing lost',
  async () => {
    const list = pairs('c', MANY);
    const bpffs = testBpffs(cleanups, 'concurrent');
    const mark = bpfIdMark();
    const first = startAgent(cleanups, bpffs, includeOf('c'));
    const started = await first.waitForMsg('started', {}, 60_000);
    assert.equal((started.interfaces as string[]).sort(), list.map((p) => p.host).sort());
    assert.equal(started.refused, {});
    assert.is(first.lines.filter((l) => l.msg === 'attached').length, MANY * 2, 'receive and transmit on each');
    await assertOneSetEach(mark, list, first, 2);

    // A different number of datagrams to each interface: counters shared or swapped between interfaces would show.
    const before = udpOn(bpffs, list);
    for (const [i, p] of list.entries()) sendUdp(p, p.hostAddress, 3 + i, 100);
    assert.equal(
      udpOn(bpffs, list).map((n, i) => n - before[i]!),
      list.map((_, i) => BigInt(3 + i)),
    );
    const links = list.map((p) => bpffs.linkId(p.host).linkId);
    const counting = udpOn(bpffs, list);

    await first.stop('SIGKILL');
    for (const [i, p] of list.entries()) sendUdp(p, p.hostAddress, 20 + i, 100); // nobody running: the pinned links keep counting
    const second = startAgent(cleanups, bpffs, includeOf('c'));
    await second.waitForMsg('started', {}, 60_000);
    assert.is(second.lines.filter((l) => l.msg === 'adopted pinned attachment').length, MANY * 2, 'every one adopted');
    assert.is(second.lines.filter((l) => l.msg === 'attached').length, 0, 'none attached anew');
    assert.equal(
      udpOn(bpffs, list).map((n, i) => n - counting[i]!),
      list.map((_, i) => BigInt(20 + i)),
      'what was sent while no agent ran, on each interface',
    );
    assert.equal(
      list.map((p) => bpffs.linkId(p.host).linkId),
      links,
      'the same links',
    );
    await assertOneSetEach(mark, list, second, 2);
    assert.is((await second.stop()).code, 0);
    for (const p of list) assert.is(xdpOn(p.host), undefined, `nothing left on ${p.host}`);
    assert.not.ok(existsSync(`${bpffs.path}/carnx`), 'no pins left');
  },
);

Concurrent('a refused interface among many is left untouched, the others attached whole', async () => {
  const healthy = pairs('h', 5);
  // Native XDP: a veth at MTU 9500 refuses the link after the program is loaded; the foreign one is refused before.
  const [jumbo] = pairs('h', 1, { mtu: 9500 });
  const [held] = pairs('h', 1);
  const foreignId = attachForeignProgram(cleanups, held!);
  const bpffs = testBpffs(cleanups, 'isolated');
  const mark = bpfIdMark();
  const agent = startAgent(cleanups, bpffs, includeOf('h'), [
    '--xdp-mode',
    'native',
    '--interfaces-directions',
    'receive',
    // No rescan retries the refused interface while its objects are counted below (the last flag wins).
    '--interfaces-rescan-interval-ms',
    '3600000',
  ]);
  const started = await agent.waitForMsg('started', {}, 60_000);
  assert.equal((started.interfaces as string[]).sort(), healthy.map((p) => p.host).sort());
  const refused = started.refused as Record<string, string>;
  assert.equal(Object.keys(refused).sort(), [`${jumbo!.host}/receive`, `${held!.host}/receive`].sort());
  assert.match(refused[`${jumbo!.host}/receive`]!, 'bpf_link_create failed');
  assert.match(refused[`${held!.host}/receive`]!, `program id ${foreignId}`);

  assert.is(xdpOn(jumbo!.host), undefined, 'nothing attached to the refused interface');
  assert.not.ok(existsSync(interfacePins(bpffs.path, jumbo!.host).dir), 'and nothing pinned for it');
  assert.is(xdpOn(held!.host), 'xdpgeneric', 'the foreign program stays');
  assert.not.ok(existsSync(interfacePins(bpffs.path, held!.host).dir));
  // The refused interface's loaded program and maps are gone too: only the healthy ones' sets are live.
  await assertOneSetEach(mark, healthy, agent, 1);

  const before = udpOn(bpffs, healthy);
  for (const [i, p] of healthy.entries()) sendUdp(p, p.hostAddress, 4 + i, 100);
  assert.equal(
    udpOn(bpffs, healthy).map((n, i) => n - before[i]!),
    healthy.map((_, i) => BigInt(4 + i)),
  );
  assert.is((await agent.stop()).code, 0);
  assert.is(xdpOn(held!.host), 'xdpgeneric', 'still there after the agent stopped');
});

Concurrent("an object the verifier refuses stops start-up with the verifier's reason, nothing attached", async () => {
  const work = mkdtempSync(join(tmpdir(), 'carnx-rejected-'));
  cleanups.defer(() => rmSync(work, { recursive: true, force: true }));
  const rejected = compileBpf(fixtureSource('rejected.bpf.c'), work, 'rejected.bpf.o');
  const [pair] = pairs('r', 1);
  const bpffs = testBpffs(cleanups, 'rejected');
  const agent = startAgent(cleanups, bpffs, pair!.host, ['--xdp-object', rejected]);
  const exit = await agent.exitWithin(60_000);
  assert.is(exit.code, 4, agent.describe());
  const lines = agent.stderr.trim().split('\n');
  assert.match(lines[0]!, /could not load xdp\.object .*rejected\.bpf\.o: bpf_object__load failed .*: EACCES/);
  // The programs load side by side on worker threads; the tail comes from the load repeated where the log is kept.
  assert.ok(
    lines.slice(1).some((l) => /invalid access to packet/.test(l)),
    `the verifier's reason in the details:\n${agent.stderr}`,
  );
  assert.is(xdpOn(pair!.host), undefined, 'nothing attached');
  assert.not.ok(existsSync(`${bpffs.path}/carnx/v1/${pair!.host}`), 'nothing pinned');
});

Concurrent.run();
