// Bad input, the documented way in: config files, env values and flags -> the documented exit code, one clear line, nothing attached.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnAgent, testBpffs } from '../fixtures/agent-process.js';
import { setpriv } from '../fixtures/capabilities.js';
import { TestCollector, freePort } from '../fixtures/collector.js';
import { requireRoot } from '../fixtures/privileges.js';
import { pinTree, xdpOn } from '../fixtures/kernel-objects.js';
import { Cleanups } from '../fixtures/cleanups.js';
import { quietPair } from '../fixtures/netns.js';
import { waitFor } from '../fixtures/wait.js';
import { reported } from '../fixtures/hooks.js';

const EXIT = { config: 2, host: 3, bpfObject: 4, noInterface: 5 } as const;

interface BadCase {
  name: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Leave out the test's --otlp-endpoint flag (it would hide a bad endpoint from the environment). */
  ownEndpoint?: boolean;
  /** Leave out the test's --interfaces-include flag (lists add up over flags). */
  ownInclude?: boolean;
  code: number;
  /** The one line on stderr. */
  line: RegExp;
  /** Text that must not appear anywhere in the output (a secret in the bad value). */
  secret?: string;
  /** Run through setpriv without any capability. */
  unprivileged?: boolean;
}

const BadInput = suite('e2e: bad input');
const cleanups = new Cleanups();
let work = '';

BadInput.before(
  reported(() => {
    requireRoot('the e2e tests');
    work = mkdtempSync(join(tmpdir(), 'carnx-e2e-bad-'));
  }),
);
BadInput.after.each(() => cleanups.run());
BadInput.after(() => rmSync(work, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

/** Runs carnx to its exit (killed after 15 s: a bad input that starts the agent is a failure too). */
async function carnx(
  args: string[],
  env: NodeJS.ProcessEnv,
  unprivileged: boolean,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  // setpriv: root's uid with every capability gone, as in a container that grants none. (Another uid could not
  // read a clone that lives under a private directory, and would test file permissions instead.)
  const agent = spawnAgent(cleanups, args, { env, prefix: unprivileged ? setpriv([]) : [] });
  const timer = setTimeout(() => agent.child.kill('SIGKILL'), 15_000);
  const exit = await agent.exited;
  clearTimeout(timer);
  return { code: exit.code ?? String(exit.signal), stdout: agent.stdout, stderr: agent.stderr };
}

/** A port this test listens on, so the agent finds it taken. */
async function heldPort(): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, server };
}

/** `takenPort` is held by the test for the whole corpus. */
function corpus(takenPort: number): BadCase[] {
  const dir = join(work, 'a-directory.yaml');
  mkdirSync(dir, { recursive: true });
  const notPem = file('not-a-ca.pem', 'this is not PEM\n');
  const corrupt = file('corrupt.bpf.o', 'not an ELF file');
  const c = EXIT.config;
  return [
    // Flags.
    {
      name: 'enum flag',
      args: ['--xdp-mode', 'sideways'],
      code: c,
      line: /^carnx: config: xdp\.mode: must be one of auto, native, generic, tc, got "sideways" \(from flag --xdp-mode\)$/,
    },
    {
      name: 'non-numeric duration',
      args: ['--export-interval-ms', 'abc'],
      code: c,
      line: /^carnx: config: export\.intervalMs: must be an integer between 100 and 3600000, got "abc" \(from flag --export-interval-ms\)$/,
    },
    {
      name: 'duration below its minimum',
      args: ['--export-interval-ms', '10'],
      code: c,
      line: /^carnx: config: export\.intervalMs: must be an integer between 100 and 3600000, got 10 /i,
    },
    {
      name: 'zero timeout',
      args: ['--otlp-timeout-ms', '0'],
      code: c,
      line: /^carnx: config: otlp\.timeoutMs: must be an integer between 100 and 600000, got 0 /,
    },
    {
      name: 'endpoint scheme',
      args: ['--otlp-endpoint', 'ftp://127.0.0.1:4317'],
      ownEndpoint: true,
      code: c,
      line: /^carnx: config: otlp\.endpoint: must be http:\/\/host:port.* \(from flag --otlp-endpoint\)$/,
    },
    {
      name: 'endpoint with a path',
      args: ['--otlp-endpoint', 'http://127.0.0.1:4317/v1/metrics'],
      ownEndpoint: true,
      code: c,
      line: /^carnx: config: otlp\.endpoint: must be .*no path/,
    },
    {
      name: 'credentials in the endpoint',
      args: ['--otlp-endpoint', 'http://user:hunter2secret@127.0.0.1:4317'],
      ownEndpoint: true,
      code: c,
      line: /^carnx: config: otlp\.endpoint: .*\[redacted\]@/,
      secret: 'hunter2secret',
    },
    {
      name: 'header without =',
      args: ['--otlp-headers', 'sk-live-8f3ab1c9'],
      code: c,
      line: /^carnx: config: otlp\.headers: entry 1 of 1 is not key=value/,
      secret: 'sk-live-8f3ab1c9',
    },
    {
      name: 'header with bad percent-encoding',
      args: ['--otlp-headers', 'x-api-key=%zzTOKEN77'],
      code: c,
      line: /^carnx: config: otlp\.headers: value of "x-api-key" is not valid percent-encoding/,
      secret: 'TOKEN77',
    },
    {
      name: 'binary header',
      args: ['--otlp-headers', 'x-auth-bin=c2VjcmV0LWJpbg'],
      code: c,
      line: /^carnx: config: otlp\.headers: binary metadata \(x-auth-bin\) is not supported$/,
      secret: 'c2VjcmV0LWJpbg',
    },
    {
      name: 'header value gRPC refuses',
      args: ['--otlp-headers', 'x-api-key=caf%C3%A9-secret'],
      code: c,
      line: /^carnx: config: otlp\.headers: "x-api-key" is not usable as gRPC metadata/,
      secret: 'secret',
    },
    {
      name: 'unknown flag',
      args: ['--no-such-flag', '1'],
      code: c,
      line: /^carnx: config: --no-such-flag: unknown flag$/,
    },
    {
      name: 'camelCase flag',
      args: ['--exportIntervalMs', '500'],
      code: c,
      line: /^carnx: config: --exportIntervalMs: unknown flag \(did you mean --export-interval-ms\?\)$/,
    },
    {
      name: 'boolean flag value',
      args: ['--xdp-replace-foreign', 'maybe'],
      code: c,
      line: /^carnx: config: xdp\.replaceForeign: must be true or false/,
    },
    {
      name: 'bad glob',
      args: ['--interfaces-include', 'eth[0'],
      code: c,
      line: /^carnx: config: interfaces\.include: entry 2 "eth\[0" is not a valid glob/,
    },
    {
      name: 'relative bpffs path',
      args: ['--bpffs-path', 'sys/fs/bpf'],
      code: c,
      line: /^carnx: config: bpffs\.path: must be an absolute path, got "sys\/fs\/bpf"/,
    },
    {
      name: 'health listen address',
      args: ['--health-listen', 'everywhere'],
      code: c,
      line: /^carnx: config: health\.listen: must be host:port/,
    },
    {
      // Before anything is loaded or attached: else systemd's restarts would attach and detach every few seconds.
      name: 'health port taken',
      args: ['--health-listen', `127.0.0.1:${takenPort}`],
      code: c,
      line: new RegExp(
        `^carnx: config: health\\.listen 127\\.0\\.0\\.1:${takenPort}: address in use \\(EADDRINUSE\\)$`,
      ),
    },
    {
      name: 'client cert without key',
      args: ['--otlp-endpoint', 'https://127.0.0.1:4317', '--otlp-tls-cert', notPem],
      ownEndpoint: true,
      code: c,
      line: /^carnx: config: otlp\.tls\.cert, otlp\.tls\.key: must be given together/,
    },
    {
      name: 'insecure with https',
      args: ['--otlp-endpoint', 'https://127.0.0.1:4317', '--otlp-tls-insecure'],
      ownEndpoint: true,
      code: c,
      line: /^carnx: config: otlp\.tls\.insecure, otlp\.endpoint: insecure \(plaintext\) contradicts an https:\/\/ endpoint/,
    },
    {
      name: 'CA with http',
      args: ['--otlp-tls-ca', notPem],
      code: c,
      line: /^carnx: config: otlp\.endpoint, otlp\.tls\.ca: an http:\/\/ endpoint is plaintext/,
    },
    {
      name: 'compression',
      args: ['--otlp-compression', 'brotli'],
      code: c,
      line: /^carnx: config: otlp\.compression: must be one of gzip, none, got "brotli"/,
    },
    {
      name: 'temporality',
      args: ['--otlp-temporality', 'sometimes'],
      code: c,
      line: /^carnx: config: otlp\.temporality: must be one of cumulative, delta/,
    },
    {
      name: 'log level',
      args: ['--log-level', 'loud'],
      code: c,
      line: /^carnx: config: log\.level: must be one of fatal, error/,
    },
    { name: 'stray word', args: ['extra'], code: c, line: /^carnx: config: argument \d+: unexpected/ },
    {
      name: 'flag without its value',
      args: ['--export-interval-ms'],
      code: c,
      line: /^carnx: config: --export-interval-ms: needs a value$/,
    },
    {
      name: 'unreadable CA file',
      args: ['--otlp-endpoint', 'https://127.0.0.1:4317', '--otlp-tls-ca', join(work, 'missing-ca.pem')],
      ownEndpoint: true,
      code: c,
      line: /^carnx: config: otlp\.tls\.ca: cannot read .*missing-ca\.pem: not found$/,
    },
    {
      name: 'CA file that is not PEM',
      args: ['--otlp-endpoint', 'https://127.0.0.1:4317', '--otlp-tls-ca', notPem],
      ownEndpoint: true,
      code: c,
      line: /^carnx: config: otlp\.tls\.ca: .*not-a-ca\.pem is not a PEM file of certificates$/,
    },
    {
      name: 'client key that is not PEM',
      args: ['--otlp-endpoint', 'https://127.0.0.1:4317', '--otlp-tls-cert', notPem, '--otlp-tls-key', notPem],
      ownEndpoint: true,
      code: c,
      line: /^carnx: config: otlp\.tls: the CA, certificate or key is not valid PEM/,
    },
    // Environment.
    {
      name: 'env enum',
      env: { CARNX_XDP_MODE: 'turbo' },
      code: c,
      line: /^carnx: config: xdp\.mode: must be one of .* got "turbo" \(from env CARNX_XDP_MODE\)$/,
    },
    {
      name: 'env duration with a unit',
      env: { CARNX_EXPORT_INTERVAL_MS: '1s' },
      code: c,
      line: /^carnx: config: export\.intervalMs: .* got "1s" \(from env CARNX_EXPORT_INTERVAL_MS\)$/,
    },
    {
      name: 'env boolean',
      env: { CARNX_XDP_REPLACE_FOREIGN: 'yes' },
      code: c,
      line: /^carnx: config: xdp\.replaceForeign: must be true or false .*\(from env CARNX_XDP_REPLACE_FOREIGN\)$/,
    },
    {
      name: 'OTEL endpoint',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' },
      ownEndpoint: true,
      code: c,
      line: /^carnx: config: otlp\.endpoint: .*\(from env OTEL_EXPORTER_OTLP_ENDPOINT\)$/,
    },
    {
      name: 'OTEL temporality',
      env: { OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'LowMemory' },
      code: c,
      line: /^carnx: config: otlp\.temporality: .*"lowmemory" \(from env OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE\)$/,
    },
    {
      name: 'env headers token',
      env: { CARNX_OTLP_HEADERS: 'Bearer abcdef0123456789' },
      code: c,
      line: /^carnx: config: otlp\.headers: entry 1 of 1 is not key=value .*\(from env CARNX_OTLP_HEADERS\)$/,
      secret: 'abcdef0123456789',
    },
    {
      name: 'env config file missing',
      env: { CARNX_CONFIG: join(work, 'nope.yaml') },
      code: c,
      line: /^carnx: config: config file .*nope\.yaml: not found$/,
    },
    // Files.
    {
      name: 'YAML syntax',
      args: ['--config', file('syntax.yaml', 'otlp:\n  endpoint: [unclosed\n')],
      code: c,
      line: /^carnx: config: config file .*syntax\.yaml: YAML syntax error at line \d+, column \d+/,
    },
    {
      name: 'JSON syntax',
      args: ['--config', file('syntax.json', '{"otlp": {"endpoint": }')],
      code: c,
      line: /^carnx: config: config file .*syntax\.json: JSON syntax error at line 1/,
    },
    {
      name: 'unknown key',
      args: ['--config', file('typo.yaml', 'otlp:\n  endpont: http://127.0.0.1:4317\n')],
      code: c,
      line: /^carnx: config: otlp\.endpont: unknown key \(in .*typo\.yaml\)$/,
    },
    {
      name: 'key in the wrong case',
      args: ['--config', file('case.yaml', 'export:\n  intervalms: 500\n')],
      code: c,
      line: /^carnx: config: export\.intervalms: unknown key \(did you mean export\.intervalMs\?\) \(in .*case\.yaml\)$/,
    },
    {
      name: 'quoted number',
      args: ['--config', file('quoted.yaml', 'export:\n  intervalMs: "500"\n')],
      code: c,
      line: /^carnx: config: export\.intervalMs: must be an integer without quotes, got the string "500" \(in .*quoted\.yaml\)$/,
    },
    {
      name: 'section replaced by a value',
      args: ['--config', file('section.yaml', 'interfaces: eth0\n')],
      code: c,
      line: /^carnx: config: interfaces: must be a section .*got a string/,
    },
    {
      name: 'unsupported extension',
      args: ['--config', file('carnx.toml', '[otlp]\n')],
      code: c,
      line: /^carnx: config: config file .*carnx\.toml: unsupported extension "\.toml"/,
    },
    {
      name: 'directory as file',
      args: ['--config', dir],
      code: c,
      line: /^carnx: config: config file .*a-directory\.yaml: is a directory$/,
    },
    {
      name: 'number as header value',
      args: ['--config', file('header.yaml', 'otlp:\n  headers:\n    x-api-key: 12345\n')],
      code: c,
      line: /^carnx: config: otlp\.headers: value of "x-api-key" must be a string/,
    },
    {
      name: 'list at the top',
      args: ['--config', file('list.yaml', '- otlp\n- xdp\n')],
      code: c,
      line: /^carnx: config: config file .*list\.yaml: must hold a mapping of sections/,
    },
    {
      name: 'dotted key',
      args: ['--config', file('dotted.yaml', 'otlp.endpoint: http://127.0.0.1:4317\n')],
      code: c,
      line: /^carnx: config: otlp\.endpoint: not a valid key; write nested sections as mappings/,
    },
    {
      name: 'secret header in a bad file',
      args: ['--config', file('secret.yaml', 'otlp:\n  headers: "x-api-key=filesecret42"\n')],
      code: c,
      line: /^carnx: config: otlp\.headers: must be a mapping of names to strings, got a string/,
      secret: 'filesecret42',
    },
    // Beyond the configuration: the other documented codes.
    {
      name: 'missing BPF object',
      args: ['--xdp-object', join(work, 'missing.bpf.o')],
      code: EXIT.bpfObject,
      line: /^carnx: xdp\.object .*missing\.bpf\.o does not exist/,
    },
    {
      name: 'corrupt BPF object',
      args: ['--xdp-object', corrupt],
      code: EXIT.bpfObject,
      line: /^carnx: could not load xdp\.object .*corrupt\.bpf\.o/,
    },
    {
      name: 'bpffs path not a bpf filesystem',
      args: ['--bpffs-path', work],
      code: EXIT.host,
      line: /^carnx: bpffs\.path .* is not a bpf filesystem/,
    },
    {
      name: 'no matching interface',
      args: ['--interfaces-include', 'carnx-no-such-if*'],
      ownInclude: true,
      code: EXIT.noInterface,
      line: /^carnx: no interface matches interfaces\.include/,
    },
    {
      name: 'no privileges',
      unprivileged: true,
      code: EXIT.host,
      line: /^carnx: missing capabilities CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON/,
    },
  ];
}

BadInput(
  'at least 30 bad configurations: the documented exit code, one line naming the problem, nothing attached',
  async () => {
    const pair = quietPair(cleanups, 'b');
    // One pin root per parallel lane: carnx holds a lock on its bpffs.path, so two cases of one batch sharing it
    // would refuse each other (exit 3) instead of reaching the problem they test.
    const lanes = [0, 1, 2, 3].map((lane) => testBpffs(cleanups, `e2e-bad-${lane}`));
    const closed = `http://127.0.0.1:${await freePort()}`;
    const taken = cleanups.add(await heldPort(), (held) => held.server.close());
    const cases = corpus(taken.port);
    assert.ok(cases.filter((c) => c.code === EXIT.config).length >= 30, 'at least 30 bad configurations');
    const failures: string[] = [];
    // A few at a time: each is a Node.js start-up.
    for (let i = 0; i < cases.length; i += 4) {
      await Promise.all(
        cases.slice(i, i + 4).map(async (c, lane) => {
          const bpffs = lanes[lane]!;
          const args = [
            'run',
            ...(c.ownInclude ? [] : ['--interfaces-include', pair.host]),
            '--interfaces-exclude=',
            '--bpffs-path',
            bpffs.path,
            ...(c.ownEndpoint ? [] : ['--otlp-endpoint', closed]),
            ...(c.args ?? []),
          ];
          const run = await carnx(args, c.env ?? {}, c.unprivileged ?? false);
          const lines = run.stderr.split('\n').filter((l) => l !== '');
          const problems = [
            run.code !== c.code && `exit ${run.code}, expected ${c.code}`,
            lines.length !== 1 && `${lines.length} lines on stderr`,
            lines.length > 0 && !c.line.test(lines[0]!) && `stderr does not match ${c.line}`,
            /\n\s+at /.test(run.stderr) && 'a stack trace',
            c.secret !== undefined && `${run.stdout}${run.stderr}`.includes(c.secret) && 'the secret is echoed',
            run.stdout.includes('"msg":"attached"') && 'it attached',
          ].filter(Boolean);
          if (problems.length > 0)
            failures.push(`${c.name}: ${problems.join('; ')}\n      stderr: ${run.stderr.trim()}`);
        }),
      );
      const batch = cases
        .slice(i, i + 4)
        .map((c) => c.name)
        .join(', ');
      if (xdpOn(pair.host) !== undefined) failures.push(`${batch}: attached to the interface`);
      for (const bpffs of lanes) {
        if (pinTree(bpffs.path).length > 0) failures.push(`${batch}: pinned ${pinTree(bpffs.path).join(' ')}`);
      }
    }
    assert.equal(failures, [], `${cases.length} cases`);
  },
);

BadInput('a bad export setting on SIGHUP is refused: the running configuration keeps exporting', async () => {
  const pair = quietPair(cleanups, 'h');
  const bpffs = testBpffs(cleanups, 'e2e-badhup');
  const collector = cleanups.add(await TestCollector.start(), (c) => c.destroy());
  const config = file('reload.yaml', `otlp:\n  endpoint: ${collector.endpoint}\n`);
  const agent = spawnAgent(cleanups, [
    'run',
    '--config',
    config,
    '--interfaces-include',
    pair.host,
    '--interfaces-exclude=',
    '--bpffs-path',
    bpffs.path,
    '--export-interval-ms',
    '300',
  ]);
  await agent.waitForMsg('started');
  await waitFor('exports', () => collector.points().length > 0, 10_000);
  writeFileSync(
    config,
    `otlp:\n  endpoint: ${collector.endpoint.replace('http:', 'https:')}\n  tls:\n    ca: ${join(work, 'gone-ca.pem')}\n`,
  );
  const mark = agent.lines.length;
  agent.child.kill('SIGHUP');
  const refused = await agent.waitForMsg('reload refused: keeping the running configuration', {}, 5_000, mark);
  assert.match(JSON.stringify(refused.problems), /otlp\.tls\.ca: cannot read .*gone-ca\.pem: not found/);
  const seen = collector.requests().length;
  await waitFor('exports to go on after the refused reload', () => collector.requests().length >= seen + 3, 5_000);
  assert.is(agent.lines.slice(mark).filter((l) => l.msg === 'configuration reloaded').length, 0, 'nothing reloaded');
  assert.is((await agent.stop()).code, 0);
});

BadInput.run();
