// Least privilege, proven: the real agent works with exactly the capabilities the chart adds, and fails cleanly without each one.
//
// The agent runs under setpriv as uid 0 with a bounding set of exactly PROVEN_CAPS, no inheritable or ambient
// capabilities and no_new_privs: for root that leaves permitted = effective = the bounding set, which is what a
// container runtime gives a root container with `drop: [ALL]` plus `add: [...]`. The chart (helm/carnx/values.yaml),
// docker-compose.yml and config/systemd/carnx.service add this same set, read from proven-capabilities.json.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { interfacePins } from '../../src/attach/pin-paths.js';
import { type AgentProcess, type TestBpffs, spawnAgent, testBpffs } from '../fixtures/agent-process.js';
import { PROVEN_CAPS, capMask, setpriv } from '../fixtures/capabilities.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { freePort } from '../fixtures/collector.js';
import { msgIs } from '../fixtures/json-log.js';
import { xdpOn } from '../fixtures/kernel-objects.js';
import { type VethPair, vethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { capSet } from '../fixtures/proc-status.js';
import { reported } from '../fixtures/hooks.js';

/** In the order of proven-capabilities.json. */
const ALL: string[] = Object.keys(PROVEN_CAPS);

/** The agent as root with exactly `caps` (setpriv execs it in place: the child's pid is the agent's). */
const capped = (caps: string[], args: string[]) =>
  spawnAgent(cleanups, args, { prefix: setpriv(caps, { noNewPrivs: true }) });

/** Signals are handled once start-up is over (the "started" log line); before that SIGTERM would simply kill it. */
const started = (agent: AgentProcess) => agent.lines.some(msgIs('started'));

const xdpAttached = (ifname: string) => xdpOn(ifname) !== undefined;

const Caps = suite('least privilege');
/** Per test: the agents. */
const cleanups = new Cleanups();
/** For the whole suite: the veth pair and the pin root. */
const shared = new Cleanups();
let pair: VethPair;
let bpffs: TestBpffs;
let otlpPort = 0;
let healthPort = 0;

function start(caps: string[], extra: string[] = []): AgentProcess {
  return capped(caps, [
    'run',
    '--interfaces-include',
    pair.host,
    '--interfaces-exclude',
    '',
    '--otlp-endpoint',
    `http://127.0.0.1:${otlpPort}`,
    '--bpffs-path',
    bpffs.path,
    '--export-interval-ms',
    '1000',
    '--health-listen',
    `127.0.0.1:${healthPort}`,
    ...extra,
  ]);
}

Caps.before(
  reported(async () => {
    requireRoot('the least-privilege proof');
    // A private pin root (bpffs.path) of our own: the agent removes pins of interfaces it does not select under its
    // bpffs.path, so sharing /sys/fs/bpf/carnx with another agent or test would let them disturb each other.
    bpffs = testBpffs(shared, 'caps'); // unpinning removes whatever is still pinned
    pair = vethPair(shared, 'p'); // deleting the veth also removes any XDP attachment on it
    otlpPort = await freePort();
    healthPort = await freePort();
  }),
);

Caps.after.each(() => cleanups.run());
Caps.after(() => shared.run());

Caps(
  `with exactly ${ALL.join(', ')}: attaches, serves /livez, and SIGTERM exits 0 leaving nothing behind`,
  async () => {
    const agent = start(ALL);
    const pins = interfacePins(bpffs.path, pair.host);
    await agent.waitUntil(`the pinned link ${pins.link}`, () => existsSync(pins.link), 15_000);
    await agent.waitUntil('the agent to finish starting', () => started(agent), 15_000);
    assert.ok(xdpAttached(pair.host), `ip link show ${pair.host} shows no xdp`);

    const pid = agent.child.pid!;
    const want = capMask(ALL);
    const effective = capSet(pid, 'CapEff');
    assert.is(effective, want, `effective set 0x${effective.toString(16)} is not exactly the proven set`);
    assert.is(capSet(pid, 'CapPrm'), want);
    assert.is(capSet(pid, 'CapBnd'), want);
    assert.is(capSet(pid, 'CapInh'), 0n);
    assert.is(capSet(pid, 'CapAmb'), 0n);

    const livez = await fetch(`http://127.0.0.1:${healthPort}/livez`);
    assert.is(livez.status, 200);

    agent.child.kill('SIGTERM');
    const { code } = await agent.exitWithin();
    assert.is(code, 0, agent.describe());
    assert.not.ok(existsSync(pins.link), 'the link is still pinned after a clean exit');
    assert.not.ok(existsSync(pins.counters), 'the counters are still pinned after a clean exit');
    assert.not.ok(existsSync(pins.dir), "the interface's pin directory is left after a clean exit");
    assert.not.ok(xdpAttached(pair.host), 'XDP is still attached after a clean exit');
    assert.not.match(agent.stderr, /\n\s+at /, 'a stack trace on stderr');
  },
);

for (const missing of ALL) {
  Caps(`without ${missing}: exits non-zero with one clear line, nothing attached or pinned`, async () => {
    const agent = start(ALL.filter((c) => c !== missing));
    const { code, signal } = await agent.exitWithin();
    assert.ok(code !== 0, `exit ${code ?? signal}\n${agent.describe()}`);
    const lines = agent.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.is(lines.length, 1, `expected one line on stderr\n${agent.describe()}`);
    assert.match(lines[0]!, new RegExp(`^carnx: .*${missing}`), `the line does not name ${missing}`);
    assert.not.match(`${agent.stdout}${agent.stderr}`, /\n\s+at /, 'a stack trace');
    const pins = interfacePins(bpffs.path, pair.host);
    assert.not.ok(existsSync(pins.link), 'a link was pinned');
    assert.not.ok(existsSync(pins.dir), 'a pin directory was left');
    assert.not.ok(xdpAttached(pair.host), 'XDP was attached');
  });
}

/** The kernel operations of test/fixtures/kernel-ops-probe.ts, run with exactly `caps`: the steps it got through. */
function probe(caps: string[]): Array<{ step: string; ok: boolean; code?: string }> {
  const probeJs = fileURLToPath(new URL('../fixtures/kernel-ops-probe.js', import.meta.url));
  const object = fileURLToPath(new URL('../../../xdp/carnx.bpf.o', import.meta.url));
  const run = spawnSync(
    setpriv(caps, { noNewPrivs: true })[0]!,
    [
      ...setpriv(caps, { noNewPrivs: true }).slice(1),
      process.execPath,
      probeJs,
      object,
      String(pair.ifindex()),
      bpffs.path,
    ],
    { encoding: 'utf8' },
  );
  return run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { step: string; ok: boolean; code?: string });
}

/** Where the kernel refuses each operation without each capability (carnx's own preflight is not involved). */
const KERNEL_REFUSES: Record<string, { step: string; code: string }> = {
  CAP_BPF: { step: 'load carnx_count (XDP)', code: 'EPERM' },
  // The verifier refuses the parser's packet-pointer arithmetic without CAP_PERFMON.
  CAP_PERFMON: { step: 'load carnx_count (XDP)', code: 'EACCES' },
  // XDP and TC are networking program types: loading them at all needs CAP_NET_ADMIN.
  CAP_NET_ADMIN: { step: 'load carnx_count (XDP)', code: 'EPERM' },
};

Caps(`the kernel itself needs each of ${ALL.join(', ')}: without one, it refuses an operation carnx needs`, () => {
  const all = probe(ALL);
  assert.ok(
    all.length === 5 && all.every((s) => s.ok),
    `with every proven capability each step works: ${JSON.stringify(all)}`,
  );
  assert.equal(Object.keys(KERNEL_REFUSES).sort(), [...ALL].sort(), 'every proven capability has its kernel refusal');
  for (const missing of ALL) {
    const steps = probe(ALL.filter((c) => c !== missing));
    const failed = steps.find((s) => !s.ok);
    assert.equal(
      failed && { step: failed.step, code: failed.code },
      KERNEL_REFUSES[missing],
      `without ${missing}: ${JSON.stringify(steps)}`,
    );
  }
});

// The chart keeps programs attached across pod restarts (xdp.keepAttachedOnExit): the next pod must adopt them
// with the same capabilities, and `carnx detach` (the uninstall clean-up) must work with them too.
Caps(`with exactly ${ALL.join(', ')}: a restart adopts the kept attachment, and detach removes it`, async () => {
  const pins = interfacePins(bpffs.path, pair.host);
  const first = start(ALL, ['--xdp-keep-attached-on-exit']);
  await first.waitUntil('the first agent to pin its link', () => existsSync(pins.link) && started(first), 15_000);
  first.child.kill('SIGTERM');
  assert.is((await first.exitWithin()).code, 0, first.describe());
  assert.ok(existsSync(pins.link), 'keepAttachedOnExit: the link should stay pinned');
  assert.ok(xdpAttached(pair.host));

  const second = start(ALL, ['--xdp-keep-attached-on-exit']);
  await second.waitUntil(
    'the second agent to adopt or refuse the pinned link',
    () => /adopted pinned attachment|not counting on interface/.test(second.stdout),
    15_000,
  );
  assert.match(
    second.stdout,
    /adopted pinned attachment/,
    `the restarted agent did not adopt its pinned link\n${second.describe()}`,
  );
  await second.waitUntil('the second agent to finish starting', () => started(second), 15_000);
  second.child.kill('SIGTERM');
  assert.is((await second.exitWithin()).code, 0, second.describe());

  const detach = capped(ALL, ['detach', '--bpffs-path', bpffs.path]);
  assert.is((await detach.exitWithin()).code, 0, detach.describe());
  assert.not.ok(existsSync(pins.link), 'detach left the link pinned');
  assert.not.ok(xdpAttached(pair.host), 'detach left XDP attached');
});

Caps.run();
