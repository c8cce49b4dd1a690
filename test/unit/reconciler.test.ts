// The reconcile loop against a fake attacher: attach the selected, release the gone and re-created, log refusals once.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AttachRefused } from '../../src/attach/attach-refused.js';
import { interfacePins, layoutPinDir } from '../../src/attach/pin-paths.js';
import type { OwnedAttachment } from '../../src/attach/pinned-attacher.js';
import { Reconciler, type Attacher } from '../../src/attach/reconciler.js';
import { emptyCounters } from '../../src/bpf/counter-layout.js';
import type { NetInterface } from '../../src/interfaces/interface-list.js';
import type { Logger } from '../../src/log/logger.js';
import { waitFor } from '../fixtures/wait.js';

interface Logged {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

function recordingLogger(lines: Logged[]): Logger {
  const log = (level: Logged['level']) => (fields: Record<string, unknown>, msg: string) =>
    lines.push({ level, msg, fields });
  return { info: log('info'), warn: log('warn') } as unknown as Logger;
}

/** Attaches everything except the names in `refuse`; records what it was asked to do. */
class FakeAttacher implements Attacher {
  readonly direction = 'receive';
  readonly calls: string[] = [];
  refuse = new Map<string, AttachRefused>();

  ensure(iface: NetInterface): OwnedAttachment {
    this.calls.push(`ensure ${iface.name}#${iface.ifindex}`);
    const refusal = this.refuse.get(iface.name);
    if (refusal) throw refusal;
    const meta = {
      countingSinceUnixNs: 1n,
      layoutVersion: 1,
      ifindex: iface.ifindex,
      deltaExportedUntilUnixNs: 0n,
      deltaExported: emptyCounters(),
    };
    return {
      ifname: iface.name,
      ifindex: iface.ifindex,
      direction: 'receive',
      hook: 'xdp-native',
      progId: 7,
      countingSinceUnixNs: 1n,
      metaAtStart: meta,
      linkFd: 1,
      countersFd: 2,
      metaFd: 3,
      pins: interfacePins('/nonexistent', iface.name),
    };
  }

  /** Names whose release throws. */
  stuck = new Set<string>();

  release(a: OwnedAttachment, keepPinned: boolean): void {
    this.calls.push(`release ${a.ifname}#${a.ifindex}${keepPinned ? ' keep' : ''}`);
    if (this.stuck.has(a.ifname)) throw new Error(`EBUSY unpinning ${a.ifname}`);
  }

  saveDeltaExported(a: OwnedAttachment): void {
    this.calls.push(`save ${a.ifname}`);
  }
}

function setup() {
  const bpffs = mkdtempSync(join(tmpdir(), 'carnx-reconcile-'));
  const attacher = new FakeAttacher();
  const lines: Logged[] = [];
  const failures: string[] = [];
  let present: NetInterface[] = [];
  let selections = 0;
  const reconciler = new Reconciler([attacher], {
    bpffs,
    logger: recordingLogger(lines),
    selected: () => {
      selections += 1;
      return present;
    },
    onAttachFailure: (reason) => failures.push(reason),
    finalRead: (a) => attacher.calls.push(`final read ${a.ifname}#${a.ifindex}`),
  });
  return {
    bpffs,
    attacher,
    lines,
    failures,
    reconciler,
    /** How many reconciles have run. */
    selections: () => selections,
    set: (...ifaces: NetInterface[]) => {
      present = ifaces;
    },
    done: () => rmSync(bpffs, { recursive: true, force: true }),
  };
}

test('attaches each selected interface once, releases the gone and re-attaches the re-created', async () => {
  const t = setup();
  try {
    t.set({ name: 'a', ifindex: 2 }, { name: 'b', ifindex: 3 });
    await t.reconciler.reconcile();
    await t.reconciler.reconcile();
    assert.equal(t.attacher.calls, ['ensure a#2', 'ensure b#3']);
    assert.equal(t.reconciler.attachedNames(), ['a', 'b']);
    t.attacher.calls.length = 0;
    t.set({ name: 'a', ifindex: 9 }); // b gone, a re-created with a new ifindex
    await t.reconciler.reconcile();
    assert.equal(t.attacher.calls, ['final read a#2', 'release a#2', 'final read b#3', 'release b#3', 'ensure a#9']);
    assert.equal(t.reconciler.attachedByHook(), { 'xdp-native': 1 });
  } finally {
    t.done();
  }
});

test('the final read comes before every release at a rescan, not at releaseAll; if it throws, the release goes on', async () => {
  const t = setup();
  try {
    const reads: string[] = [];
    let present: NetInterface[] = [{ name: 'a', ifindex: 2 }];
    const reconciler = new Reconciler([t.attacher], {
      bpffs: t.bpffs,
      logger: recordingLogger(t.lines),
      selected: () => present,
      onAttachFailure: () => undefined,
      finalRead: (a) => {
        reads.push(a.ifname);
        throw new Error('EBADF reading counters');
      },
    });
    await reconciler.reconcile();
    await reconciler.reconcile();
    assert.equal(reads, [], 'nothing released, nothing read');
    t.attacher.calls.length = 0;
    present = [];
    await reconciler.reconcile();
    assert.equal(reads, ['a']);
    assert.equal(t.attacher.calls, ['release a#2'], 'released although the final read threw');
    assert.ok(t.lines.some((l) => l.msg === 'could not read final counts' && l.fields.interface === 'a'));
    t.set({ name: 'b', ifindex: 3 });
    await t.reconciler.reconcile();
    t.attacher.calls.length = 0;
    await t.reconciler.releaseAll(false);
    assert.equal(t.attacher.calls, ['release b#3'], 'no final read at shutdown: the last export came before it');
  } finally {
    t.done();
  }
});

test('a refusal is logged and counted once per change, not at every rescan', async () => {
  const t = setup();
  try {
    t.attacher.refuse.set('a', new AttachRefused('foreign-program', 'a already has XDP program id 5', 5));
    t.set({ name: 'a', ifindex: 2 });
    await t.reconciler.reconcile();
    await t.reconciler.reconcile();
    assert.equal(t.failures, ['foreign-program']);
    assert.equal(t.lines.filter((l) => l.msg === 'not counting on interface').length, 1);
    assert.equal(t.reconciler.refusals(), { 'a/receive': 'a already has XDP program id 5' });
    t.attacher.refuse.clear();
    await t.reconciler.reconcile();
    assert.ok(t.lines.some((l) => l.msg === 'interface now attached'));
    assert.equal(t.reconciler.refusals(), {});
  } finally {
    t.done();
  }
});

test('an error that is not a refusal is reported as attach-error, and listing failures keep what is attached', async () => {
  const t = setup();
  try {
    t.set({ name: 'a', ifindex: 2 });
    await t.reconciler.reconcile();
    const broken = new Reconciler([t.attacher], {
      bpffs: t.bpffs,
      logger: recordingLogger(t.lines),
      selected: () => {
        throw new Error('EMFILE');
      },
      onAttachFailure: () => undefined,
    });
    await broken.reconcile();
    assert.ok(t.lines.some((l) => l.msg === 'could not list interfaces' && l.fields.err === 'EMFILE'));
    t.attacher.ensure = () => {
      throw new Error('bpf_link_create failed');
    };
    t.set({ name: 'a', ifindex: 2 }, { name: 'c', ifindex: 4 });
    await t.reconciler.reconcile();
    assert.equal(t.failures, ['attach-error']);
    assert.equal(t.reconciler.attachedNames(), ['a']);
  } finally {
    t.done();
  }
});

test('pins of interfaces neither present nor attached are swept; releaseAll keeps pins when asked and stops rescans', async () => {
  const t = setup();
  try {
    const stale = interfacePins(t.bpffs, 'gone0');
    mkdirSync(stale.dir, { recursive: true });
    writeFileSync(stale.meta, '');
    t.set({ name: 'a', ifindex: 2 });
    await t.reconciler.reconcile();
    assert.not.ok(existsSync(stale.dir), 'the stale pin directory is removed');
    t.attacher.calls.length = 0;
    await t.reconciler.releaseAll(true);
    assert.equal(t.attacher.calls, ['release a#2 keep']);
    await t.reconciler.reconcile();
    assert.equal(t.attacher.calls, ['release a#2 keep'], 'nothing is attached after releaseAll');
  } finally {
    t.done();
  }
});

test('a rescan that throws (bpffs sweep) is logged once per message and the next rescan runs', async () => {
  const t = setup();
  try {
    t.set({ name: 'a', ifindex: 2 });
    // The layout directory is a file: listing pinned interfaces fails with ENOTDIR at every rescan.
    mkdirSync(dirname(layoutPinDir(t.bpffs)), { recursive: true });
    writeFileSync(layoutPinDir(t.bpffs), '');
    t.reconciler.rescanEvery(5);
    const failed = () => t.lines.filter((l) => l.msg === 'rescan failed; trying again');
    await waitFor('several failed rescans', () => t.selections() >= 4);
    assert.equal(t.attacher.calls, [], 'the failure comes before attaching');
    assert.is(failed().length, 1, 'one line for a failure that persists');
    assert.match(String(failed()[0]?.fields.err), /ENOTDIR/);
    rmSync(layoutPinDir(t.bpffs));
    await waitFor('the rescan to recover', () => t.lines.some((l) => l.msg === 'rescan recovered'));
    assert.equal(t.reconciler.attachedNames(), ['a']);
  } finally {
    t.reconciler.halt();
    t.done();
  }
});

test('releaseAll tries every attachment, then throws naming those it could not release', async () => {
  const t = setup();
  try {
    t.set({ name: 'a', ifindex: 2 }, { name: 'b', ifindex: 3 });
    await t.reconciler.reconcile();
    t.attacher.stuck.add('a');
    t.attacher.calls.length = 0;
    const failed = await t.reconciler.releaseAll(false).then(
      () => undefined,
      (err: Error) => err,
    );
    assert.match(String(failed?.message), /could not release a\/receive \(logged above\)/);
    assert.equal(t.attacher.calls, ['release a#2', 'release b#3']);
    assert.ok(t.lines.some((l) => l.msg === 'could not release attachment' && l.fields.interface === 'a'));
    assert.equal(t.reconciler.attachedNames(), []);
  } finally {
    t.done();
  }
});

test('saveDeltaExported reaches the attachment by name, and ignores names not attached', async () => {
  const t = setup();
  try {
    t.set({ name: 'a', ifindex: 2 });
    await t.reconciler.reconcile();
    t.reconciler.saveDeltaExported('a', 'receive', emptyCounters(), 1n);
    t.reconciler.saveDeltaExported('zz', 'receive', emptyCounters(), 1n);
    t.reconciler.saveDeltaExported('a', 'transmit', emptyCounters(), 1n);
    assert.equal(
      t.attacher.calls.filter((c) => c.startsWith('save')),
      ['save a'],
    );
  } finally {
    t.done();
  }
});

/** An attacher whose ensure() settles only when the test says so: what is in flight at once is visible. */
class GatedAttacher implements Attacher {
  readonly calls: string[] = [];
  readonly #gates = new Map<string, { open: () => void; fail: (err: Error) => void }>();
  inFlight = 0;
  mostInFlight = 0;

  constructor(readonly direction: 'receive' | 'transmit') {}

  async ensure(iface: NetInterface): Promise<OwnedAttachment> {
    this.calls.push(`ensure ${iface.name}`);
    this.inFlight += 1;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    try {
      await new Promise<void>((resolve, reject) => this.#gates.set(iface.name, { open: resolve, fail: reject }));
    } finally {
      this.inFlight -= 1;
      this.#gates.delete(iface.name);
    }
    return { ...new FakeAttacher().ensure(iface), direction: this.direction };
  }

  waiting(): string[] {
    return [...this.#gates.keys()].sort();
  }

  open(name: string): void {
    this.#gates.get(name)?.open();
  }

  fail(name: string, err: Error): void {
    this.#gates.get(name)?.fail(err);
  }

  release(a: OwnedAttachment): void {
    this.calls.push(`release ${a.ifname}`);
  }

  saveDeltaExported(): void {}
}

function gated(concurrency: number, ...directions: Array<'receive' | 'transmit'>) {
  const t = setup();
  const attachers = directions.map((d) => new GatedAttacher(d));
  const reconciler = new Reconciler(attachers, {
    bpffs: t.bpffs,
    logger: recordingLogger(t.lines),
    selected: () => [1, 2, 3, 4, 5].map((i) => ({ name: `e${i}`, ifindex: i })),
    onAttachFailure: (reason) => t.failures.push(reason),
    concurrency,
  });
  return { t, attachers, reconciler };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('attaches a bounded number of interfaces at once; a failing one is refused alone', async () => {
  const { t, attachers, reconciler } = gated(2, 'receive');
  const [a] = attachers as [GatedAttacher];
  try {
    const done = reconciler.reconcile();
    await waitFor('two attaches in flight', () => a.waiting().length === 2);
    assert.equal(a.waiting(), ['e1', 'e2'], 'in selection order, two at a time');
    a.fail('e1', new Error('bpf_link_create failed for e1: EBUSY'));
    await waitFor('e3 started in e1s place', () => a.waiting().includes('e3'));
    for (const name of ['e2', 'e3']) a.open(name);
    await waitFor('the last two', () => a.waiting().length === 2 && a.waiting()[0] === 'e4');
    for (const name of ['e4', 'e5']) a.open(name);
    await done;
    assert.is(a.mostInFlight, 2);
    assert.equal(reconciler.attachedNames().sort(), ['e2', 'e3', 'e4', 'e5']);
    assert.equal(reconciler.refusals(), { 'e1/receive': 'bpf_link_create failed for e1: EBUSY' });
    assert.equal(t.failures, ['attach-error']);
  } finally {
    t.done();
  }
});

test("one interface's directions attach one after the other, receive first", async () => {
  const { t, attachers, reconciler } = gated(5, 'receive', 'transmit');
  const [rx, tx] = attachers as [GatedAttacher, GatedAttacher];
  try {
    const done = reconciler.reconcile();
    await waitFor('every receive attach in flight', () => rx.waiting().length === 5);
    await settle();
    assert.equal(tx.calls, [], 'no transmit attach before its receive attach settled');
    rx.open('e3');
    await waitFor('e3 transmit', () => tx.waiting().includes('e3'));
    assert.equal(tx.waiting(), ['e3']);
    for (const name of ['e1', 'e2', 'e4', 'e5']) rx.open(name);
    await waitFor('every transmit attach in flight', () => tx.waiting().length === 5);
    for (const name of tx.waiting()) tx.open(name);
    await done;
    assert.is([...reconciler.attachments()].length, 10, 'both directions of all five');
  } finally {
    t.done();
  }
});

test('reconciles never overlap: one asked for meanwhile runs after, and those piling up run once', async () => {
  const { t, attachers, reconciler } = gated(5, 'receive');
  const [a] = attachers as [GatedAttacher];
  try {
    const first = reconciler.reconcile();
    await waitFor('attaches in flight', () => a.waiting().length === 5);
    const second = reconciler.reconcile();
    assert.is(reconciler.reconcile(), second, 'a third request joins the waiting one');
    await settle();
    assert.is(a.calls.length, 5, 'the waiting reconcile has not started');
    for (const name of a.waiting()) a.open(name);
    await first;
    await second;
    assert.is(a.calls.length, 5, 'the second found every interface attached');
  } finally {
    t.done();
  }
});

test('releaseAll waits for attaches under way, then releases them too: nothing is left attached', async () => {
  const { t, attachers, reconciler } = gated(2, 'receive');
  const [a] = attachers as [GatedAttacher];
  try {
    const attaching = reconciler.reconcile();
    await waitFor('attaches in flight', () => a.waiting().length === 2);
    const releasing = reconciler.releaseAll(false);
    await settle();
    assert.not.ok(
      a.calls.some((c) => c.startsWith('release')),
      'nothing released while attaches are under way',
    );
    for (const name of a.waiting()) a.open(name);
    await releasing;
    await attaching;
    assert.equal(a.calls, ['ensure e1', 'ensure e2', 'release e1', 'release e2'], 'no attach started after the halt');
    assert.equal(reconciler.attachedNames(), []);
  } finally {
    t.done();
  }
});

test.run();
