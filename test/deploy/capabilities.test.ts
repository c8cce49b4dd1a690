// Least privilege, proven: the real agent works with exactly the capabilities the chart adds, and fails cleanly without each one.
//
// The agent runs under setpriv as uid 0 with a bounding set of exactly PROVEN_CAPS, no inheritable or ambient
// capabilities and no_new_privs: for root that leaves permitted = effective = the bounding set, which is what a
// container runtime gives a root container with `drop: [ALL]` plus `add: [...]`. The chart (helm/carnx/values.yaml),
// docker-compose.yml and config/systemd/carnx.service add this same set, read from proven-capabilities.json.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { MAIN, TestBpffs } from '../fixtures/agent-process.js';
import { interfacePins } from '../../src/attach/pin-paths.js';
import { ip, VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';
import { freePort } from '../fixtures/collector.js';

/** The capabilities carnx needs, with their bit numbers: the one list every deploy test reads. */
const PROVEN_CAPS = (
  JSON.parse(readFileSync(new URL('../../../test/deploy/proven-capabilities.json', import.meta.url), 'utf8')) as {
    capabilities: Record<string, number>;
  }
).capabilities;
type CapName = string;
const ALL: CapName[] = Object.keys(PROVEN_CAPS);

/** setpriv's spelling of a capability: lower case, without CAP_. */
const setprivName = (cap: CapName) => cap.slice('CAP_'.length).toLowerCase();

class CappedAgent {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(caps: CapName[], agentArgs: string[]) {
    const set = ['-all', ...caps.map((c) => `+${setprivName(c)}`)].join(',');
    this.child = spawn(
      'setpriv',
      [
        '--bounding-set',
        set,
        '--inh-caps',
        '-all',
        '--ambient-caps',
        '-all',
        '--no-new-privs',
        '--',
        process.execPath,
        MAIN,
        ...agentArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      this.stdout += c;
    });
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      this.stderr += c;
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve(signal === null ? code : 128)),
    );
  }

  /** setpriv execs the agent in place, so the child's pid is the agent's: its capability sets as the kernel sees them. */
  capSets(): Record<'CapInh' | 'CapPrm' | 'CapEff' | 'CapBnd' | 'CapAmb', bigint> {
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const read = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s+([0-9a-f]+)$`, 'm').exec(status)![1]}`);
    return {
      CapInh: read('CapInh'),
      CapPrm: read('CapPrm'),
      CapEff: read('CapEff'),
      CapBnd: read('CapBnd'),
      CapAmb: read('CapAmb'),
    };
  }

  describe(): string {
    return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`;
  }
}

const mask = (caps: CapName[]) => caps.reduce((m, c) => m | (1n << BigInt(PROVEN_CAPS[c]!)), 0n);

async function waitFor(what: string, check: () => boolean, agent: CappedAgent, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void agent.exited.then(() => {
    exited = true;
  });
  while (!check()) {
    if (exited || Date.now() > deadline)
      throw new Error(`${exited ? 'agent exited' : 'timed out'} waiting for ${what}\n${agent.describe()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Signals are handled once start-up is over (the "started" log line); before that SIGTERM would simply kill it. */
const started = (agent: CappedAgent) => /"msg":"started"/.test(agent.stdout);

async function exitWithin(agent: CappedAgent, timeoutMs = 20_000): Promise<number | null> {
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  const result = await Promise.race([agent.exited, timer]);
  if (result === 'timeout') throw new Error(`agent did not exit within ${timeoutMs} ms\n${agent.describe()}`);
  return result;
}

function xdpAttached(ifname: string): boolean {
  return /\bxdp(generic|drv|offload)?\b/.test(ip('-o', 'link', 'show', 'dev', ifname));
}

const Caps = suite('least privilege');
let pair: VethPair | undefined;
let bpffs: TestBpffs | undefined;
let otlpPort = 0;
let healthPort = 0;
const running: CappedAgent[] = [];

function start(caps: CapName[], extra: string[] = []): CappedAgent {
  const agent = new CappedAgent(caps, [
    'run',
    '--interfaces-include',
    pair!.host,
    '--interfaces-exclude',
    '',
    '--otlp-endpoint',
    `http://127.0.0.1:${otlpPort}`,
    '--bpffs-path',
    bpffs!.path,
    '--export-interval-ms',
    '1000',
    '--health-listen',
    `127.0.0.1:${healthPort}`,
    ...extra,
  ]);
  running.push(agent);
  return agent;
}

Caps.before(async () => {
  requireRoot('the least-privilege proof');
  // A private pin root (bpffs.path) of our own: the agent removes pins of interfaces it does not select under its
  // bpffs.path, so sharing /sys/fs/bpf/carnx with another agent or test would let them disturb each other.
  bpffs = new TestBpffs('caps');
  pair = new VethPair('p').create();
  otlpPort = await freePort();
  healthPort = await freePort();
});

Caps.after.each(async () => {
  for (const agent of running.splice(0)) {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    await agent.exited;
  }
});

Caps.after(() => {
  pair?.destroy(); // deleting the veth also removes any XDP attachment on it
  bpffs?.destroy(); // unpinning removes whatever is still pinned
});

Caps(
  `with exactly ${ALL.join(', ')}: attaches, serves /livez, and SIGTERM exits 0 leaving nothing behind`,
  async () => {
    const agent = start(ALL);
    const pins = interfacePins(bpffs!.path, pair!.host);
    await waitFor(`the pinned link ${pins.link}`, () => existsSync(pins.link), agent);
    await waitFor('the agent to finish starting', () => started(agent), agent);
    assert.ok(xdpAttached(pair!.host), `ip link show ${pair!.host} shows no xdp`);

    const caps = agent.capSets();
    const want = mask(ALL);
    assert.is(caps.CapEff, want, `effective set 0x${caps.CapEff.toString(16)} is not exactly the proven set`);
    assert.is(caps.CapPrm, want);
    assert.is(caps.CapBnd, want);
    assert.is(caps.CapInh, 0n);
    assert.is(caps.CapAmb, 0n);

    const livez = await fetch(`http://127.0.0.1:${healthPort}/livez`);
    assert.is(livez.status, 200);

    agent.child.kill('SIGTERM');
    const code = await exitWithin(agent);
    assert.is(code, 0, agent.describe());
    assert.not.ok(existsSync(pins.link), 'the link is still pinned after a clean exit');
    assert.not.ok(existsSync(pins.counters), 'the counters are still pinned after a clean exit');
    assert.not.ok(existsSync(pins.dir), "the interface's pin directory is left after a clean exit");
    assert.not.ok(xdpAttached(pair!.host), 'XDP is still attached after a clean exit');
    assert.not.match(agent.stderr, /\n\s+at /, 'a stack trace on stderr');
  },
);

for (const missing of ALL) {
  Caps(`without ${missing}: exits non-zero with one clear line, nothing attached or pinned`, async () => {
    const agent = start(ALL.filter((c) => c !== missing));
    const code = await exitWithin(agent);
    assert.ok(code !== 0 && code !== null, `exit code ${code}\n${agent.describe()}`);
    const lines = agent.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.is(lines.length, 1, `expected one line on stderr\n${agent.describe()}`);
    assert.match(lines[0]!, new RegExp(`^carnx: .*${missing}`), `the line does not name ${missing}`);
    assert.not.match(`${agent.stdout}${agent.stderr}`, /\n\s+at /, 'a stack trace');
    const pins = interfacePins(bpffs!.path, pair!.host);
    assert.not.ok(existsSync(pins.link), 'a link was pinned');
    assert.not.ok(existsSync(pins.dir), 'a pin directory was left');
    assert.not.ok(xdpAttached(pair!.host), 'XDP was attached');
  });
}

// The chart keeps programs attached across pod restarts (xdp.keepAttachedOnExit): the next pod must adopt them
// with the same capabilities, and `carnx detach` (the uninstall clean-up) must work with them too.
Caps(`with exactly ${ALL.join(', ')}: a restart adopts the kept attachment, and detach removes it`, async () => {
  const pins = interfacePins(bpffs!.path, pair!.host);
  const first = start(ALL, ['--xdp-keep-attached-on-exit']);
  await waitFor('the first agent to pin its link', () => existsSync(pins.link) && started(first), first);
  first.child.kill('SIGTERM');
  assert.is(await exitWithin(first), 0, first.describe());
  assert.ok(existsSync(pins.link), 'keepAttachedOnExit: the link should stay pinned');
  assert.ok(xdpAttached(pair!.host));

  const second = start(ALL, ['--xdp-keep-attached-on-exit']);
  await waitFor(
    'the second agent to adopt or refuse the pinned link',
    () => /adopted pinned attachment|not counting on interface/.test(second.stdout),
    second,
  );
  assert.match(
    second.stdout,
    /adopted pinned attachment/,
    `the restarted agent did not adopt its pinned link\n${second.describe()}`,
  );
  await waitFor('the second agent to finish starting', () => started(second), second);
  second.child.kill('SIGTERM');
  assert.is(await exitWithin(second), 0, second.describe());

  const detach = new CappedAgent(ALL, ['detach', '--bpffs-path', bpffs!.path]);
  running.push(detach);
  assert.is(await exitWithin(detach), 0, detach.describe());
  assert.not.ok(existsSync(pins.link), 'detach left the link pinned');
  assert.not.ok(xdpAttached(pair!.host), 'detach left XDP attached');
});

Caps.run();
