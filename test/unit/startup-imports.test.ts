// What a command loads: the agent's start-up goes as far as its checks without the export side's modules.
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAIN } from '../fixtures/agent-process.js';

/** Packages of node_modules that a start-up should not load unless it needs them (OTel + gRPC: ~250 ms of CPU). */
const HEAVY = ['@opentelemetry', '@grpc', 'protobufjs', 'yaml', 'pino-pretty'];

/** Prints, at exit, the packages whose CommonJS modules the process loaded (every dependency here is CommonJS). */
const REPORT_LOADED = `data:text/javascript,${encodeURIComponent(`
import { createRequire } from 'node:module';
process.on('exit', () => {
  const files = Object.keys(createRequire(process.cwd() + '/').cache);
  const packages = files.map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean);
  process.stderr.write('loaded: ' + JSON.stringify([...new Set(packages)]) + '\\n');
});`)}`;

/** Runs carnx with `args`; its exit status and the packages it loaded. */
function carnx(args: string[]): { status: number | null; packages: string[]; stderr: string } {
  const run = spawnSync(process.execPath, ['--import', REPORT_LOADED, MAIN, ...args], { encoding: 'utf8' });
  const line = run.stderr.split('\n').find((l) => l.startsWith('loaded: ')) ?? 'loaded: []';
  return { status: run.status, packages: JSON.parse(line.slice('loaded: '.length)) as string[], stderr: run.stderr };
}

const heavyIn = (packages: string[]) => packages.filter((p) => HEAVY.some((h) => p === h || p.startsWith(`${h}/`)));

test('carnx version loads none of the agent, export or config file modules', () => {
  const { status, packages } = carnx(['version']);
  assert.is(status, 0);
  assert.equal(heavyIn(packages), []);
  assert.ok(!packages.includes('koffi'), packages.join(', '));
  assert.ok(packages.includes('convict'), `the check sees loads at all: ${packages.join(', ')}`);
});

test('carnx run that fails its checks exits before the export side is loaded', () => {
  // No bpffs there (or, unprivileged, no capabilities): a host error (3), after the config and the log are set up and
  // the export side's import has started.
  const { status, packages, stderr } = carnx(['run', '--bpffs-path', '/nonexistent/carnx-startup-imports']);
  assert.is(status, 3, stderr);
  assert.equal(heavyIn(packages), [], 'no OTel SDK, gRPC, yaml (no config file) or pino-pretty (JSON log)');
  assert.ok(packages.includes('pino'), `the check sees loads at all: ${packages.join(', ')}`);
});

test.run();
