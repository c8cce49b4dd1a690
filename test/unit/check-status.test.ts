// The pieces of `carnx check` and `carnx status` that need no kernel: version rules, the lock probe, the hook plan.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Libbpf, XdpQueryResult } from '../../src/bpf/libbpf.js';
import { loadConfig } from '../../src/config/load-config.js';
import { agentPresence, lockId } from '../../src/host/agent-probe.js';
import { checkBpffsMounted, checkBtf, checkKernel, kernelVersion } from '../../src/host/host-checks.js';
import { parseCommandLine, takeSwitches } from '../../src/cli/command-line.js';
import { checkInterface, type InterfaceContext } from '../../src/cli/check-interfaces.js';
import { bootTimeToIso, type CarnxAttachment } from '../../src/cli/status-attachments.js';
import { renderStatus } from '../../src/cli/status-command.js';

test('kernel versions: 5.9 is the floor, tcx from 6.6', () => {
  assert.equal(kernelVersion('6.18.44-cloud-amd64'), [6, 18]);
  assert.is(kernelVersion('unknown'), undefined);
  assert.is(checkKernel('5.4.0-150-generic').status, 'fail');
  assert.match(checkKernel('5.4.0').fix ?? '', 'upgrade');
  assert.is(checkKernel('5.9.0').status, 'warn');
  assert.is(checkKernel('6.5.13').status, 'warn');
  assert.is(checkKernel('6.6.0').status, 'ok');
  assert.is(checkKernel('10.0.1').status, 'ok');
  assert.is(checkKernel('weird').status, 'warn');
});

test('BTF and bpffs: a missing file warns, a directory that is not bpffs fails with the mount command', () => {
  assert.is(checkBtf('/nonexistent/vmlinux').status, 'warn');
  const dir = mkdtempSync(join(tmpdir(), 'carnx-check-'));
  try {
    const item = checkBpffsMounted(dir);
    assert.is(item.status, 'fail');
    assert.is(item.fix, `mount -t bpf -o mode=0700 bpf ${dir}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the agent is seen in /proc/locks: holder pid and command, waiters and other files ignored', () => {
  const dir = mkdtempSync(join(tmpdir(), 'carnx-lock-'));
  try {
    const id = lockId(dir);
    const held = `1: FLOCK  ADVISORY  WRITE ${process.pid} ${id} 0 EOF\n`;
    const seen = agentPresence(dir, `2: POSIX  ADVISORY  WRITE 7 00:01:2 0 EOF\n${held}`);
    assert.is(seen.running, true);
    assert.is(seen.pid, process.pid);
    assert.is(seen.command?.split(' ')[0], process.argv0, 'its command line, from /proc/<pid>/cmdline');
    assert.equal(agentPresence(dir, `1: -> FLOCK  ADVISORY  WRITE 99 ${id} 0 EOF\n`), { running: false });
    assert.equal(agentPresence(dir, `1: FLOCK  ADVISORY  WRITE 99 00:01:1 0 EOF\n`), { running: false });
    assert.equal(agentPresence(dir, `1: FLOCK  ADVISORY  WRITE 0 ${id} 0 EOF\n`), { running: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`carnx <command> --help` names the command; --json and --config-only are taken out of the config flags', () => {
  assert.equal(parseCommandLine(['status', '--help']), { command: 'help', flags: ['status'] });
  assert.equal(parseCommandLine(['--help']), { command: 'help', flags: [] });
  assert.equal(parseCommandLine(['help', '-h']), { command: 'help', flags: [] });
  const { switches, rest } = takeSwitches(['--json', '--xdp-mode', 'tc'], ['--json', '--config-only']);
  assert.equal([...switches], ['--json']);
  assert.equal(rest, ['--xdp-mode', 'tc']);
});

test('boot-time stamps become wall-clock times through /proc/uptime', () => {
  // Booted 100 s before "now"; loaded 40 s after boot.
  const now = Date.parse('2026-12-01T12:00:00.000Z');
  assert.is(bootTimeToIso(40_000_000_000n, '100.00 50.00\n', now), '2026-12-01T11:59:00.000Z');
});

/** A libbpf stand-in: XDP and tcx queries answer from tables, program names from a map. */
function fakeLib(xdp: Partial<XdpQueryResult>, tcx: Record<string, number[]>, names: Record<number, string>): Libbpf {
  const none: XdpQueryResult = { progId: 0, drvProgId: 0, skbProgId: 0, hwProgId: 0, attachMode: 'none' };
  return {
    xdpQuery: () => ({ ...none, ...xdp }),
    tcxQuery: (_: number, direction: string) => tcx[direction] ?? [],
    progFdById: (id: number) => id,
    closeFd: () => undefined,
    check: (_: string, result: number) => result,
    calls: {
      objGetInfo: (fd: number, info: Buffer) => {
        info.writeUInt32LE(fd, 4);
        info.write(names[fd] ?? '', 64);
        return 0;
      },
    },
  } as unknown as Libbpf;
}

const IFACE = { name: 'eth9', ifindex: 9, linkType: 1 };

function context(lib: Libbpf, flags: string[] = [], ours: CarnxAttachment[] = [], tcx = true): InterfaceContext {
  const config = loadConfig({ argv: ['--interfaces-include', 'eth9', ...flags], env: {} });
  return { config, lib, privileged: true, tcx, ours };
}

test('check: a foreign XDP program moves auto to TC ingress and stops native; carnx and tcx neighbours are named', () => {
  const lib = fakeLib(
    { skbProgId: 41, attachMode: 'generic' },
    { ingress: [77], egress: [] },
    { 41: 'xdp_pass', 77: 'cilium_tc' },
  );
  const auto = checkInterface(context(lib), IFACE);
  assert.equal(auto.attached, [
    { hook: 'xdp-generic', progId: 41, name: 'xdp_pass', owner: 'foreign' },
    { hook: 'tc-ingress', progId: 77, name: 'cilium_tc', owner: 'foreign' },
  ]);
  assert.is(auto.plan[0]?.hook, 'tc-ingress');
  assert.match(auto.plan[0]?.reason ?? '', 'xdp-native is held by program id 41 (xdp_pass) that carnx does not own');
  assert.is(auto.plan[1]?.hook, 'tc-egress');

  const native = checkInterface(context(lib, ['--xdp-mode', 'native']), IFACE);
  assert.is(native.plan[0]?.hook, undefined);
  assert.match(native.plan[0]?.reason ?? '', /^not counted: xdp-native is held by program id 41/);

  const replace = checkInterface(context(lib, ['--xdp-mode', 'native', '--xdp-replace-foreign', 'true']), IFACE);
  assert.is(replace.plan[0]?.hook, 'xdp-native');
  assert.match(replace.plan[0]?.reason ?? '', 'would remove program id 41');
});

test("check: carnx's own pinned link is adopted; without tcx nothing is counted on transmit; non-Ethernet is skipped", () => {
  const lib = fakeLib({ drvProgId: 5, attachMode: 'native' }, {}, { 5: 'carnx_count' });
  const ours: CarnxAttachment[] = [
    { ifname: 'eth9', direction: 'receive', hook: 'xdp-native', linkId: 3, progId: 5, ifindex: 9, pinDir: '/x' },
  ];
  const adopted = checkInterface(context(lib, [], ours), IFACE);
  assert.equal(adopted.attached, [{ hook: 'xdp-native', progId: 5, name: 'carnx_count', owner: 'carnx' }]);
  assert.is(adopted.plan[0]?.hook, 'xdp-native');
  assert.match(adopted.plan[0]?.reason ?? '', 'carnx counts there now (link id 3)');
  const elsewhere = checkInterface(context(lib, [], [], false), IFACE);
  assert.is(elsewhere.attached[0]?.owner, 'other-carnx');
  assert.is(elsewhere.plan[1]?.hook, undefined);
  assert.match(elsewhere.plan[1]?.reason ?? '', 'no tcx hooks');
  const tun = checkInterface(context(lib), { name: 'wg0', ifindex: 12, linkType: 65534 });
  assert.is(tun.counted, false);
  assert.match(tun.notes[0] ?? '', 'link type 65534 (none)');
});

test('status text: agent, hooks with ids and times, problems', () => {
  const text = renderStatus({
    bpffsPath: '/sys/fs/bpf',
    agent: { running: true, pid: 42, command: 'node main.js run' },
    attachments: [
      {
        ifname: 'eth0',
        direction: 'receive',
        hook: 'tc-ingress',
        linkId: 7,
        progId: 8,
        progName: 'carnx_count_tc',
        ifindex: 2,
        countingSince: '2026-12-01T10:00:00.000Z',
        pinDir: '/sys/fs/bpf/carnx/v1/eth0',
      },
      { ifname: 'gone0', direction: 'transmit', pinDir: '/p', problem: 'defunct' },
    ],
    otherLayoutDirs: [],
  });
  assert.match(text, 'agent: running, pid 42 (node main.js run)');
  assert.match(text, '  eth0  receive  tc-ingress  link 7  program 8 carnx_count_tc');
  assert.match(text, 'counting since 2026-12-01T10:00:00.000Z');
  assert.match(text, '  gone0  transmit  ?\n    defunct');
});

test.run();
