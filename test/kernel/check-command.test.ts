// `carnx check` against real veths: a foreign XDP program and a foreign tcx program are named and left alone, the
// hook carnx would use follows from them, nothing is attached, and a host that cannot run carnx exits with the reason.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { libbpf } from '../../src/bpf/libbpf.js';
import { MAIN, testBpffs } from '../fixtures/agent-process.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { reported } from '../fixtures/hooks.js';
import { pinTree } from '../fixtures/kernel-objects.js';
import { attachForeignProgram } from '../fixtures/loaded-program.js';
import { quietPair, type VethPair } from '../fixtures/netns.js';
import { requireRoot } from '../fixtures/privileges.js';

const FOREIGN_TC = fileURLToPath(new URL('../../../test/fixtures/foreign-tc.bpf.c', import.meta.url));
const ARCH_INCLUDE = `/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;

const Check = suite('carnx check on the host');
const cleanups = new Cleanups();
let work = '';

Check.before(
  reported(() => {
    requireRoot('carnx check on the host');
    work = mkdtempSync(join(tmpdir(), 'carnx-check-'));
  }),
);
Check.after.each(() => cleanups.run());
Check.after(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function carnx(args: string[], prefix: string[] = []): Run {
  const [cmd, ...argv] = [...prefix, process.execPath, MAIN, ...args];
  const run = spawnSync(cmd ?? '', argv, { encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/**
 * A prefix that runs carnx with no capabilities: as nobody (65534) when nobody can read this checkout, else as uid 0
 * with every capability dropped (a clone under a 0700 directory, such as `mktemp -d` makes, is unreadable to
 * nobody). What check decides on is the capabilities, which both lack.
 */
function unprivileged(): string[] {
  const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'];
  if (spawnSync('setpriv', [...nobody.slice(1), 'test', '-r', MAIN]).status === 0) return nobody;
  return ['setpriv', '--inh-caps=-all', '--bounding-set=-all'];
}

// biome-ignore lint/suspicious/noExplicitAny: the JSON document under test
type Doc = any;

function checkJson(pairs: VethPair[], bpffs: string, extra: string[] = []): { run: Run; doc: Doc } {
  const include = pairs.map((p) => p.host).join(',');
  const run = carnx([
    'check',
    '--json',
    '--interfaces-include',
    include,
    '--interfaces-exclude=',
    '--bpffs-path',
    bpffs,
    ...extra,
  ]);
  let doc: Doc;
  try {
    doc = JSON.parse(run.stdout);
  } catch {
    throw new Error(`not JSON (exit ${run.status}):\n${run.stdout}${run.stderr}`);
  }
  return { run, doc };
}

const iface = (doc: Doc, name: string) => doc.interfaces.find((i: Doc) => i.name === name);
const plan = (doc: Doc, name: string, direction: string) =>
  iface(doc, name).plan.find((p: Doc) => p.direction === direction);

/** Another tool's TC program (foreign-tc.bpf.c) on the ingress tcx hook of `pair`; cleanups detaches and unloads it. */
function foreignTc(pair: VethPair): number {
  const object = join(work, 'foreign-tc.bpf.o');
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-I${ARCH_INCLUDE}`, '-c', FOREIGN_TC, '-o', object]);
  const obj = cleanups.add(libbpf().openObject(object), (o) => o.close());
  obj.load();
  const progFd = obj.programFd('foreign_count');
  const linkFd = libbpf().linkCreateTcx(progFd, pair.ifindex(), 'ingress', 'after', 'foreign on ingress');
  cleanups.defer(() => libbpf().closeFd(linkFd));
  return libbpf().progInfo(progFd, object).id;
}

Check(
  'a foreign XDP program and a foreign tcx program are named; carnx would count beside them and attaches nothing',
  () => {
    const held = quietPair(cleanups, 'f');
    const free = quietPair(cleanups, 'e');
    const xdpId = attachForeignProgram(cleanups, held);
    const tcId = foreignTc(free);
    const bpffs = testBpffs(cleanups, 'check');
    const { run, doc } = checkJson([held, free], bpffs.path);
    assert.is(run.status, 0, run.stdout + run.stderr);
    assert.is(doc.privileged, true);
    assert.is(doc.exitCode, 0);
    for (const id of ['kernel', 'capabilities', 'libbpf', 'bpf', 'bpffs', 'pin-tree', 'tcx', 'object', 'agent']) {
      assert.is(doc.checks.find((c: Doc) => c.id === id)?.status, 'ok', `${id}: ${JSON.stringify(doc.checks)}`);
    }

    assert.equal(iface(doc, held.host).attached, [
      { hook: 'xdp-generic', progId: xdpId, name: 'xdp_pass', owner: 'foreign' },
    ]);
    assert.is(plan(doc, held.host, 'receive').hook, 'tc-ingress');
    assert.match(plan(doc, held.host, 'receive').reason, `xdp-native is held by program id ${xdpId} (xdp_pass)`);
    assert.is(plan(doc, held.host, 'transmit').hook, 'tc-egress');

    assert.equal(iface(doc, free.host).attached, [
      { hook: 'tc-ingress', progId: tcId, name: 'foreign_count', owner: 'foreign' },
    ]);
    assert.is(plan(doc, free.host, 'receive').hook, 'xdp-native', 'tcx neighbours do not stop native XDP');
    assert.match(plan(doc, free.host, 'receive').reason, 'tc-ingress if the driver refuses native XDP');

    // Nothing attached, pinned or removed.
    assert.is(libbpf().xdpQuery(held.ifindex(), held.host).progId, xdpId, 'the foreign XDP program still runs');
    assert.is(libbpf().xdpQuery(free.ifindex(), free.host).attachMode, 'none');
    assert.equal(libbpf().tcxQuery(free.ifindex(), 'ingress', free.host), [tcId]);
    assert.equal(libbpf().tcxQuery(free.ifindex(), 'egress', free.host), []);
    assert.equal(pinTree(bpffs.path), []);

    const native = checkJson([held, free], bpffs.path, ['--xdp-mode', 'native']).doc;
    assert.is(plan(native, held.host, 'receive').hook, undefined);
    assert.match(plan(native, held.host, 'receive').reason, `not counted: xdp-native is held by program id ${xdpId}`);
    assert.is(plan(native, free.host, 'receive').hook, 'xdp-native');

    const text = carnx([
      'check',
      '--interfaces-include',
      held.host,
      '--interfaces-exclude=',
      '--bpffs-path',
      bpffs.path,
    ]);
    assert.is(text.status, 0, text.stderr);
    assert.match(text.stdout, /^carnx: configuration OK \(xdp\.object .*carnx\.bpf\.o\)\n/);
    assert.match(text.stdout, `attached now: xdp-generic program ${xdpId} xdp_pass (not carnx)`);
    assert.match(text.stdout, 'carnx can run here');
  },
);

Check('a host carnx cannot run on: the exit code of `carnx run`, the reason and what to do next', () => {
  const pair = quietPair(cleanups, 'n');
  const notBpffs = join(work, 'plain-dir');
  execFileSync('mkdir', ['-p', notBpffs]);
  const { run, doc } = checkJson([pair], notBpffs);
  assert.is(run.status, 3, run.stdout + run.stderr);
  assert.is(doc.exitCode, 3);
  assert.is(doc.failed.id, 'bpffs');
  assert.match(run.stderr, `bpffs.path ${notBpffs} is not a bpf filesystem`);
  assert.match(run.stderr, `mount -t bpf -o mode=0700 bpf ${notBpffs}`);

  const bpffs = testBpffs(cleanups, 'none');
  const none = carnx(['check', '--interfaces-include', 'cx-no-such-if', '--bpffs-path', bpffs.path]);
  assert.is(none.status, 5, none.stdout + none.stderr);
  assert.match(none.stdout, 'carnx cannot run here: no interface with an Ethernet header matches');

  const bad = carnx(['check', '--json', '--xdp-mode', 'sideways']);
  assert.is(bad.status, 2);
  assert.is(bad.stdout, '', 'a config error prints no report');
  assert.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, 'xdp.mode');
});

Check('without root: the config part and what needs no privileges; the rest is skipped, exit 0', () => {
  const pair = quietPair(cleanups, 'u');
  const xdpId = attachForeignProgram(cleanups, pair);
  const prefix = unprivileged();
  const run = carnx(['check', '--json', '--interfaces-include', pair.host, '--interfaces-exclude='], prefix);
  assert.is(run.status, 0, run.stdout + run.stderr);
  const doc = JSON.parse(run.stdout);
  assert.is(doc.privileged, false);
  const status = (id: string) => doc.checks.find((c: Doc) => c.id === id)?.status;
  for (const id of ['capabilities', 'bpf', 'tcx', 'object']) assert.is(status(id), 'skipped', id);
  assert.is(status('kernel'), 'ok');
  assert.is(status('libbpf'), 'ok');
  assert.equal(iface(doc, pair.host).attached, [{ hook: 'xdp-generic', progId: xdpId, owner: 'unknown' }]);
  const text = carnx(['check', '--interfaces-include', pair.host, '--interfaces-exclude='], prefix);
  assert.match(text.stdout, /checks need root\n$/);
});

Check.run();
