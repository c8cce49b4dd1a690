// Every layer's error maps to its documented exit code and lines; readiness says what is missing; the command line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ExitCode, failureOf } from '../../src/cli/exit-codes.js';
import { parseCommandLine } from '../../src/cli/command-line.js';
import { stopAgent } from '../../src/cli/stop-agent.js';
import { ConfigError } from '../../src/config/config-error.js';
import { HealthListenError } from '../../src/health/health-listen-error.js';
import { readiness } from '../../src/health/readiness.js';
import { BpffsInUse } from '../../src/host/bpffs-lock.js';
import { BpfObjectUnusable, HostNotReady } from '../../src/host/host-errors.js';
import { NoInterfaceSelected } from '../../src/interfaces/interface-selector.js';
import { ExportSettingsError } from '../../src/metrics/export-settings-error.js';

test('each error type maps to its exit code, with one line per problem', () => {
  assert.equal(failureOf(new ConfigError(['a: bad', 'b: worse'])), {
    exitCode: ExitCode.config,
    lines: ['config: a: bad', 'config: b: worse'],
  });
  assert.equal(failureOf(new ExportSettingsError('otlp.tls.ca: x is not PEM')), {
    exitCode: ExitCode.config,
    lines: ['config: otlp.tls.ca: x is not PEM'],
  });
  assert.equal(
    failureOf(
      new HealthListenError('127.0.0.1:9400', Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' })),
    ),
    { exitCode: ExitCode.config, lines: ['config: health.listen 127.0.0.1:9400: address in use (EADDRINUSE)'] },
  );
  assert.equal(failureOf(new HostNotReady('missing capabilities CAP_BPF')).exitCode, ExitCode.host);
  assert.equal(failureOf(new BpfObjectUnusable('rejected', ['R1 invalid mem access'])), {
    exitCode: ExitCode.bpfObject,
    lines: ['rejected', '  R1 invalid mem access'],
  });
  assert.equal(failureOf(new NoInterfaceSelected(['lo', 'eth0'])), {
    exitCode: ExitCode.noInterface,
    lines: [
      'no interface matches interfaces.include minus interfaces.exclude (present: lo, eth0): name one with ' +
        "--interfaces-include (interfaces.exclude skips veth*, docker*, ... by default: add '--interfaces-exclude=' " +
        'to count those)',
    ],
  });
});

test('host and object errors end with the next step; those that already say it are left alone', () => {
  const line = (err: Error) => failureOf(err).lines[0] ?? '';
  assert.is(
    line(new HostNotReady('bpffs.path /sys/fs/bpf is not usable: ENOENT')),
    'bpffs.path /sys/fs/bpf is not usable: ENOENT: mount the BPF filesystem there ' +
      "('mkdir -p /sys/fs/bpf && mount -t bpf -o mode=0700 bpf /sys/fs/bpf'), or set bpffs.path",
  );
  assert.match(line(new HostNotReady('bpffs.path /x is not usable: EACCES')), /: run carnx as root$/);
  assert.match(
    line(new BpffsInUse('/sys/fs/bpf', 4242)),
    /is running on bpffs.path \/sys\/fs\/bpf: stop that one first \('kill 4242'/,
  );
  assert.match(
    line(new BpffsInUse('/sys/fs/bpf', undefined)),
    /: stop that one first \(it may run in another container\)/,
  );
  assert.match(
    line(new HostNotReady('pin directory /sys/fs/bpf/carnx is not usable: EIO')),
    /: remove it, or set bpffs.path/,
  );
  assert.match(
    line(new HostNotReady('missing capabilities CAP_BPF: run carnx as root or grant them')),
    /Troubleshooting: capabilities$/,
  );
  assert.match(
    line(new BpfObjectUnusable('xdp.object /o.bpf.o is not readable')),
    /: make it readable, or leave xdp.object empty/,
  );
  assert.match(
    line(new BpfObjectUnusable('could not load xdp.object /o.bpf.o: EACCES', ['R1 invalid mem access'])),
    /EACCES: rebuild it with 'npm run build:bpf'; .*--log-level debug/,
  );
  // These already say what to do.
  for (const message of [
    "bpffs.path /b is not a bpf filesystem: mount it with 'mount -t bpf -o mode=0700 bpf /b'",
    'pin directory /b/carnx is a symlink: remove it (carnx will not follow it)',
    "xdp.object /o does not exist (run 'npm run build:bpf')",
    "could not load xdp.object /o: EPERM; a seccomp filter is active: the container runtime's profile must allow bpf(2)",
  ]) {
    assert.is(
      line(
        message.startsWith('xdp') || message.startsWith('could')
          ? new BpfObjectUnusable(message)
          : new HostNotReady(message),
      ),
      message,
    );
  }
});

test('anything else is an internal error that says so', () => {
  const { exitCode, lines } = failureOf(new TypeError('x is undefined'));
  assert.is(exitCode, ExitCode.internal);
  assert.match(lines[0] ?? '', /^internal error \(please report\): TypeError: x is undefined/);
  assert.equal(failureOf('thrown string').lines, ['internal error (please report): thrown string']);
});

test('a signalled stop exits 0 when it released everything, and 1 (logged) when stop() rejects', async () => {
  const logged: string[] = [];
  const logger = { error: (fields: object, msg: string) => logged.push(`${msg}: ${(fields as { err: string }).err}`) };
  assert.is(await stopAgent({ agent: { stop: async () => undefined }, logger }), ExitCode.ok);
  assert.equal(logged, []);
  const failing = { stop: () => Promise.reject(new Error('could not release eth0/receive')) };
  assert.is(await stopAgent({ agent: failing, logger }), ExitCode.internal);
  assert.equal(logged, ['stop failed: could not release eth0/receive']);
});

test('readiness: running, attached somewhere, and exports not failing', () => {
  assert.equal(readiness('new', 1, 'exporting'), { ready: false, reason: 'agent is new' });
  assert.equal(readiness('running', 0, 'exporting'), { ready: false, reason: 'attached to no interface' });
  assert.equal(readiness('running', 2, 'pending'), { ready: false, reason: 'no export has completed yet' });
  assert.equal(readiness('running', 2, 'failing'), { ready: false, reason: 'exports are failing' });
  assert.equal(readiness('running', 2, 'exporting'), {
    ready: true,
    reason: 'counting on 2 interface(s), exporting',
  });
  assert.is(readiness('stopping', 2, 'exporting').ready, false);
});

test('the command line: a known first word is the command, --help and --version anywhere', () => {
  assert.equal(parseCommandLine([]), { command: 'run', flags: [] });
  assert.equal(parseCommandLine(['check', '--config', 'x.yaml']), { command: 'check', flags: ['--config', 'x.yaml'] });
  assert.equal(parseCommandLine(['--xdp-mode', 'native']), { command: 'run', flags: ['--xdp-mode', 'native'] });
  assert.equal(parseCommandLine(['run', '--help']).command, 'help');
  assert.equal(parseCommandLine(['--version']).command, 'version');
});

test.run();
