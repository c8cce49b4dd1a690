// `carnx check`'s host items and `carnx status`'s pin reading on plain directories (no bpffs, no privileges needed):
// each answer holds for root and non-root alike, or says which it depends on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfError } from '../../src/bpf/bpf-error.js';
import { encodeMeta, emptyCounters, LAYOUT_VERSION, META_SIZE } from '../../src/bpf/counter-layout.js';
import {
  LINK_TYPES,
  MAP_TYPES,
  PROG_TYPES,
  TCX_ATTACH_TYPES,
  linkDetails,
  probeProgType,
  type Libbpf,
} from '../../src/bpf/libbpf.js';
import { loadConfig } from '../../src/config/load-config.js';
import { lockBpffs } from '../../src/host/bpffs-lock.js';
import { checkBpfUsable, checkCapabilities, checkLibbpf } from '../../src/host/host-checks.js';
import { HostNotReady } from '../../src/host/host-errors.js';
import { checkPrivileges, openLibbpf } from '../../src/host/preflight.js';
import { agentItem, checkHost, objectItem, pinTreeItem, tcxItem } from '../../src/cli/check-host.js';
import { reportCheck } from '../../src/cli/check-command.js';
import { checkCommand } from '../../src/cli/commands.js';
import { hookOf, readAttachments } from '../../src/cli/status-attachments.js';
import { statusCommand } from '../../src/cli/status-command.js';

let dir = '';
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'carnx-host-'));
});
test.after.each(() => rmSync(dir, { recursive: true, force: true }));

const privileged = (() => {
  try {
    checkPrivileges();
    return true;
  } catch {
    return false;
  }
})();

/** Runs fn with stdout and stderr captured. */
function captured(fn: () => number): { code: number; out: string; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const [o, e] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((chunk: string) => out.push(chunk) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => err.push(chunk) > 0) as typeof process.stderr.write;
  try {
    return { code: fn(), out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

test('capabilities, libbpf and the bpf probe: ok with privileges, skipped (never failed) without', () => {
  assert.is(checkCapabilities().status, privileged ? 'ok' : 'skipped');
  const { item, lib } = checkLibbpf();
  assert.is(item.status, 'ok', item.detail);
  assert.ok(lib);
  assert.is(checkBpfUsable(lib as Libbpf, false).status, 'skipped');
  assert.is(tcxItem(undefined, false).item.status, 'skipped');
  const config = loadConfig({ argv: [], env: {} });
  assert.is(objectItem(config, undefined, false, true).status, 'skipped');
});

test('the pin tree: a plain tree is trusted, a symlinked carnx/ is refused with what to do', () => {
  assert.is(pinTreeItem(dir, false).status, 'ok');
  mkdirSync(join(dir, 'elsewhere'));
  symlinkSync(join(dir, 'elsewhere'), join(dir, 'carnx'));
  const item = pinTreeItem(dir, true);
  assert.is(item.status, 'fail');
  assert.match(item.detail, 'is a symlink');
  assert.match(item.fix ?? '', 'carnx detach');
});

test('an agent holding the lock is named by pid; none is ok', () => {
  assert.is(agentItem(dir).status, 'ok');
  const fd = lockBpffs(openLibbpf(), dir);
  try {
    const item = agentItem(dir);
    assert.is(item.status, 'warn');
    assert.match(item.detail, `pid ${process.pid}`);
  } finally {
    closeSync(fd);
  }
  assert.is(agentItem(join(dir, 'missing')).status, 'skipped');
});

test('a bpffs.path that is not bpffs: exit 3 naming it and the mount command, text and JSON', () => {
  const config = loadConfig({
    argv: ['--bpffs-path', dir, '--interfaces-include', 'lo', '--interfaces-exclude='],
    env: {},
  });
  const report = checkHost(config);
  assert.is(report.exitCode, 3);
  assert.is(report.failed?.id, 'bpffs');
  assert.equal(
    report.checks.map((c) => c.id),
    ['kernel', 'capabilities', 'libbpf', 'bpf', 'btf', 'bpffs', 'pin-tree', 'tcx', 'object', 'agent', 'interfaces'],
  );
  // lo has no Ethernet header: listed, not counted, so no interface is selected either.
  assert.equal(
    report.interfaces.map((i) => [i.name, i.counted]),
    [['lo', false]],
  );
  assert.is(report.checks.at(-1)?.status, 'fail');
  const text = captured(() => reportCheck(config, false));
  assert.is(text.code, 3);
  assert.match(text.out, 'carnx cannot run here: bpffs.path');
  assert.match(text.out, `next: mount -t bpf -o mode=0700 bpf ${dir}`);
  assert.match(text.out, /lo \(ifindex 1\)\n {4}skipped: link type 772 \(loopback\)/);
  assert.match(text.err, /^carnx: bpffs\.path .* is not a bpf filesystem/);
  const json = captured(() => reportCheck(config, true));
  assert.is(JSON.parse(json.out).failed.id, 'bpffs');
  const only = captured(() => checkCommand(config, { json: false, configOnly: true }));
  assert.is(only.code, 0);
  assert.match(only.out, /^carnx: configuration OK \(xdp\.object .*\)\n$/);
});

test('status reads pins from the tree: an incomplete attach is named; no bpffs is a host error', () => {
  const iface = join(dir, 'carnx', 'v1', 'eth0');
  mkdirSync(iface, { recursive: true });
  writeFileSync(join(iface, 'counters'), '');
  const [one, ...rest] = readAttachments(openLibbpf(), dir);
  assert.equal(rest, []);
  assert.is(one?.ifname, 'eth0');
  assert.match(one?.problem ?? '', 'incomplete pins (no link, meta)');
  const config = loadConfig({ argv: ['--bpffs-path', dir], env: {} });
  assert.throws(
    () => statusCommand(config, { json: true }),
    (err: Error) => err instanceof HostNotReady,
  );
});

test('link details and hooks: tcx links name their side, XDP links their mode through the XDP query', () => {
  const lib = {
    check: (_: string, r: number) => r,
    calls: {
      objGetInfo: (_: number, info: Buffer) => {
        info.writeUInt32LE(LINK_TYPES.tcx, 0);
        info.writeUInt32LE(12, 4);
        info.writeUInt32LE(34, 8);
        info.writeUInt32LE(5, 16);
        info.writeUInt32LE(TCX_ATTACH_TYPES.egress, 20);
        return 0;
      },
    },
    xdpQuery: () => ({ progId: 34, drvProgId: 0, skbProgId: 34, hwProgId: 0, attachMode: 'generic' }),
  } as unknown as Libbpf;
  assert.equal(linkDetails(lib, 3, 'link'), { id: 12, type: LINK_TYPES.tcx, progId: 34, ifindex: 5, attachType: 47 });
  assert.is(hookOf(lib, LINK_TYPES.tcx, TCX_ATTACH_TYPES.ingress, 5, 34), 'tc-ingress');
  assert.is(hookOf(lib, LINK_TYPES.tcx, TCX_ATTACH_TYPES.egress, 5, 34), 'tc-egress');
  assert.is(hookOf(lib, LINK_TYPES.xdp, 0, 5, 34), 'xdp-generic');
  assert.is(hookOf(lib, LINK_TYPES.xdp, 0, 5, 99), undefined, 'another program: not this link');
  assert.is(hookOf(lib, LINK_TYPES.xdp, 0, 0, 34), undefined, 'defunct');
});

test('a complete pinned direction is read through its pins: hook, ids, times; every fd opened is closed', () => {
  const iface = join(dir, 'carnx', 'v1', 'eth1');
  mkdirSync(iface, { recursive: true });
  for (const pin of ['tx_link', 'tx_prog', 'tx_counters', 'tx_meta']) writeFileSync(join(iface, pin), '');
  const fds = new Map<string, number>();
  const closed: number[] = [];
  const since = 1_764_590_400_000_000_000n; // 2025-12-01T12:00:00Z
  let metaValueSize = META_SIZE;
  let lookups = 0;
  const lib = {
    getPinned: (path: string) => {
      const fd = 100 + fds.size;
      fds.set(path.split('/').pop() ?? '', fd);
      return fd;
    },
    closeFd: (fd: number) => closed.push(fd),
    check: (_: string, r: number) => r,
    mapInfo: () => ({ type: MAP_TYPES.array, keySize: 4, valueSize: metaValueSize, maxEntries: 1 }),
    lookup: () =>
      ++lookups &&
      encodeMeta({
        countingSinceUnixNs: since,
        layoutVersion: LAYOUT_VERSION,
        ifindex: 7,
        deltaExportedUntilUnixNs: 0n,
        deltaExported: emptyCounters(),
      }),
    calls: {
      objGetInfo: (fd: number, info: Buffer) => {
        if (fd === fds.get('tx_link')) {
          info.writeUInt32LE(LINK_TYPES.tcx, 0);
          info.writeUInt32LE(21, 4);
          info.writeUInt32LE(22, 8);
          info.writeUInt32LE(7, 16);
          info.writeUInt32LE(TCX_ATTACH_TYPES.egress, 20);
        } else {
          info.writeUInt32LE(22, 4);
          info.writeBigUInt64LE(5_000_000_000n, 40);
          info.write('carnx_count_tc', 64);
        }
        return 0;
      },
    },
  } as unknown as Libbpf;
  const [one] = readAttachments(lib, dir);
  assert.equal(
    { ...one, programLoaded: undefined },
    {
      ifname: 'eth1',
      direction: 'transmit',
      pinDir: iface,
      linkId: 21,
      progId: 22,
      ifindex: 7,
      hook: 'tc-egress',
      countingSince: '2025-12-01T12:00:00.000Z',
      progName: 'carnx_count_tc',
      programLoaded: undefined,
    },
  );
  assert.match(one?.programLoaded ?? '', /^\d{4}-\d\d-\d\dT/);
  assert.equal(closed.sort(), [...fds.values()].sort(), 'every fd closed');

  // A map of another shape under the meta pin is refused before any lookup (it would copy its own value size).
  metaValueSize = META_SIZE + 8;
  lookups = 0;
  const [foreign] = readAttachments(lib, dir);
  assert.match(foreign?.problem ?? '', 'is not a carnx map');
  assert.is(lookups, 0, 'not looked up');
});

test('the bpf(2) probe: true with privileges, EPERM without', () => {
  const lib = openLibbpf();
  if (privileged) {
    assert.is(probeProgType(lib, PROG_TYPES.xdp, 'an XDP program'), true);
    assert.is(checkBpfUsable(lib, true).status, 'ok');
  } else {
    assert.throws(
      () => probeProgType(lib, PROG_TYPES.xdp, 'an XDP program'),
      (err: Error) => err instanceof BpfError,
    );
  }
});

test.run();
