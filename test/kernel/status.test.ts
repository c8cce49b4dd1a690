// `carnx status` with a running agent, after it left its attachments pinned, and with nothing: hooks, ids, times, pid.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { MAIN, startAgent, testBpffs, type TestBpffs } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { reported } from '../fixtures/hooks.js';
import { quietPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';

const Status = suite('carnx status');
const cleanups = new Cleanups();

Status.before(reported(() => requireRoot('carnx status')));
Status.after.each(() => cleanups.run());

// biome-ignore lint/suspicious/noExplicitAny: the JSON document under test
type Doc = any;

function status(bpffs: TestBpffs, json = true): { status: number | null; stdout: string; doc: Doc } {
  const args = [MAIN, 'status', '--bpffs-path', bpffs.path, ...(json ? ['--json'] : [])];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`carnx status exited ${run.status}:\n${run.stdout}${run.stderr}`);
  return { status: run.status, stdout: run.stdout, doc: json ? JSON.parse(run.stdout) : undefined };
}

Status('an agent running, then gone with its attachments kept, then its interface gone', async () => {
  const pair = quietPair(cleanups, 's');
  const bpffs = testBpffs(cleanups, 'status');
  const startedMs = Date.now();
  const agent = startAgent(cleanups, bpffs, pair.host, ['--xdp-keep-attached-on-exit', 'true']);
  const hooks: Record<string, unknown> = {};
  for (const direction of ['receive', 'transmit'])
    hooks[direction] = (await agent.waitForMsg('attached', { interface: pair.host, direction })).hook;

  const running = status(bpffs).doc;
  assert.is(running.agent.running, true);
  assert.is(running.agent.pid, agent.child.pid, 'the agent holding the lock, by pid');
  assert.match(running.agent.command, MAIN);
  assert.is(running.attachments.length, 2, JSON.stringify(running.attachments));
  for (const direction of ['receive', 'transmit'] as const) {
    const a = running.attachments.find((x: Doc) => x.direction === direction);
    const ids = bpffs.linkId(pair.host, direction);
    assert.is(a.ifname, pair.host);
    assert.is(a.hook, hooks[direction], direction);
    assert.is(a.linkId, ids.linkId);
    assert.is(a.progId, ids.progId);
    assert.is(a.ifindex, pair.ifindex());
    assert.is(
      a.progName,
      direction === 'receive' && String(a.hook).startsWith('xdp') ? 'carnx_count' : 'carnx_count_tc',
    );
    const since = bpffs.read(pair.host, direction).meta.countingSinceUnixNs;
    assert.is(a.countingSince, new Date(Number(since / 1_000_000n)).toISOString());
    // load_time is boot-relative; /proc/uptime turns it into wall-clock time to within its 10 ms.
    const loaded = Date.parse(a.programLoaded);
    assert.ok(loaded >= startedMs - 1000 && loaded <= Date.now() + 1000, `${a.programLoaded} vs start ${startedMs}`);
    assert.is(a.problem, undefined);
  }

  // check sees the same: the agent by pid, carnx's programs as carnx's, and the links an agent would adopt.
  const checkArgs = ['check', '--json', '--interfaces-include', pair.host, '--interfaces-exclude=', '--bpffs-path'];
  const check = spawnSync(process.execPath, [MAIN, ...checkArgs, bpffs.path], { encoding: 'utf8' });
  assert.is(check.status, 0, check.stdout + check.stderr);
  const report = JSON.parse(check.stdout);
  const agentItem = report.checks.find((c: Doc) => c.id === 'agent');
  assert.is(agentItem.status, 'warn');
  assert.match(agentItem.detail, `pid ${agent.child.pid}`);
  const [checked] = report.interfaces;
  assert.equal(
    checked.attached.map((p: Doc) => [p.hook, p.progId, p.owner]).sort(),
    running.attachments.map((a: Doc) => [a.hook, a.progId, 'carnx']).sort(),
  );
  for (const p of checked.plan) assert.match(p.reason, 'carnx counts there now', p.direction);

  assert.is((await agent.stop('SIGTERM')).code, 0);
  const kept = status(bpffs).doc;
  assert.equal(kept.agent, { running: false });
  assert.equal(
    kept.attachments.map((a: Doc) => [a.direction, a.linkId]),
    running.attachments.map((a: Doc) => [a.direction, a.linkId]),
    'the kept links, still attached',
  );
  const text = status(bpffs, false).stdout;
  assert.match(text, 'agent: not running');
  assert.match(text, `  ${pair.host}  receive  ${hooks.receive}  link ${kept.attachments[0].linkId}`);

  pair.destroy();
  const defunct = status(bpffs).doc;
  assert.is(defunct.attachments.length, 2);
  for (const a of defunct.attachments) {
    assert.is(a.ifindex, 0, 'the links outlived their interface');
    assert.match(a.problem, 'defunct');
  }
});

Status('nothing attached and no agent', () => {
  const bpffs = testBpffs(cleanups, 'empty');
  const { doc } = status(bpffs);
  assert.equal(doc, { bpffsPath: bpffs.path, agent: { running: false }, attachments: [], otherLayoutDirs: [] });
  assert.match(status(bpffs, false).stdout, 'attached: nothing');
});

Status.run();
