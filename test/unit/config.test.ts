// Config loading: defaults, precedence of every layer, strict errors listed all at once, secret redaction, the generated reference.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { ConfigError } from '../../src/config/config-error.js';
import { renderConfigReference } from '../../src/config/config-reference.js';
import { parseHostPort, parseKeyValueList } from '../../src/config/formats.js';
import {
  describeConfig,
  loadConfig,
  otlpUsesTls,
  packageRoot,
  resolveXdpObject,
  type LoadConfigOptions,
} from '../../src/config/load-config.js';
import { configKeys, type CarnxConfig } from '../../src/config/schema.js';
import { reported } from '../fixtures/hooks.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
let dir = '';
test.before(
  reported(() => {
    dir = mkdtempSync(join(tmpdir(), 'carnx-config-'));
  }),
);
test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function load(options: Partial<LoadConfigOptions> = {}): CarnxConfig {
  return loadConfig({ argv: [], env: {}, ...options });
}

/** The ConfigError loadConfig throws; fails the test if it does not throw one. */
function failure(options: Partial<LoadConfigOptions>): ConfigError {
  try {
    load(options);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.unreachable('expected a ConfigError');
  throw new Error('unreachable');
}

/** Asserts the problems are exactly one per expected key prefix, in any order, and returns them. */
function assertProblems(options: Partial<LoadConfigOptions>, prefixes: string[]): string[] {
  const { problems } = failure(options);
  assert.is(problems.length, prefixes.length, `expected ${prefixes.length} problems, got:\n${problems.join('\n')}`);
  for (const prefix of prefixes)
    assert.ok(
      problems.some((p) => p.startsWith(prefix)),
      `no problem starts with "${prefix}":\n${problems.join('\n')}`,
    );
  for (const p of problems) assert.not.match(p, /\n/, 'each problem is one line');
  return problems;
}

const DEFAULTS: CarnxConfig = {
  interfaces: {
    include: ['*'],
    exclude: [
      'lo',
      'veth*',
      'cali*',
      'cilium*',
      'lxc*',
      'docker*',
      'br-*',
      'podman*',
      'cni*',
      'flannel*',
      'weave*',
      'genev_sys_*',
      'kube-ipvs*',
      'kube-bridge',
      'kube-dummy-if',
      'nodelocaldns',
      'ovs-system',
      'virbr*',
      'vnet*',
      'tap*',
      'vxlan*',
      'tunl*',
      'tun*',
      'gre*',
      'gretap*',
      'erspan*',
      'ip6tnl*',
      'ip6gre*',
      'sit*',
      'wg*',
      'dummy*',
      'nlmon*',
      'ifb*',
    ],
    directions: ['receive', 'transmit'],
    rescanIntervalMs: 5000,
  },
  xdp: { mode: 'auto', replaceForeign: false, object: '', keepAttachedOnExit: false },
  bpffs: { path: '/sys/fs/bpf' },
  export: { intervalMs: 10000, shutdownTimeoutMs: 5000 },
  otlp: {
    endpoint: 'http://localhost:4317',
    headers: {},
    headersFile: '',
    tls: { ca: '', cert: '', key: '', insecure: false },
    compression: 'gzip',
    timeoutMs: 10000,
    temporality: 'cumulative',
  },
  resource: { attributes: {} },
  log: { level: 'info', format: 'auto', summary: 'auto' },
  health: { listen: '' },
};

test('every key has its documented default', () => {
  assert.equal(load(), DEFAULTS);
});

test('every key has a doc, a format, and an env variable and flag named after it', () => {
  const keys = configKeys();
  assert.is(keys.length, 26);
  for (const k of keys) {
    const words = k.key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/\./g, '_');
    assert.is(k.env, `CARNX_${words.toUpperCase()}`, k.key);
    assert.is(k.arg, words.toLowerCase().replace(/_/g, '-'), k.key);
    assert.ok(k.doc.length > 20, `${k.key} has a doc string`);
    assert.ok(k.format !== 'undefined', `${k.key} has a format`);
  }
});

test('process.env and process.argv are never read', () => {
  process.env.CARNX_LOG_LEVEL = 'debug';
  try {
    assert.is(load().log.level, 'info');
  } finally {
    delete process.env.CARNX_LOG_LEVEL;
  }
});

test('precedence for otlp.endpoint: default < OTEL generic < OTEL metrics < file < CARNX env < flag', () => {
  const configFile = file('endpoint.yaml', 'otlp:\n  endpoint: http://file:4317\n');
  const env: NodeJS.ProcessEnv = {};
  assert.is(load({ env }).otlp.endpoint, 'http://localhost:4317');
  env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://otel:4317';
  assert.is(load({ env }).otlp.endpoint, 'http://otel:4317');
  env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = 'http://otel-metrics:4317';
  assert.is(load({ env }).otlp.endpoint, 'http://otel-metrics:4317');
  assert.is(load({ env, configFile }).otlp.endpoint, 'http://file:4317');
  env.CARNX_OTLP_ENDPOINT = 'http://carnx:4317';
  assert.is(load({ env, configFile }).otlp.endpoint, 'http://carnx:4317');
  assert.is(load({ env, configFile, argv: ['--otlp-endpoint', 'http://flag:4317'] }).otlp.endpoint, 'http://flag:4317');
});

test('precedence for log.level, otlp.timeoutMs and interfaces.exclude', () => {
  const configFile = file(
    'levels.yaml',
    'log: { level: warn }\notlp: { timeoutMs: 3000 }\ninterfaces: { exclude: [a] }\n',
  );
  const env: NodeJS.ProcessEnv = { OTEL_EXPORTER_OTLP_TIMEOUT: '2000', OTEL_LOG_LEVEL: 'trace' };
  let c = load({ env });
  assert.equal([c.log.level, c.otlp.timeoutMs, c.interfaces.exclude], ['info', 2000, DEFAULTS.interfaces.exclude]);
  c = load({ env, configFile });
  assert.equal([c.log.level, c.otlp.timeoutMs, c.interfaces.exclude], ['warn', 3000, ['a']]);
  Object.assign(env, { CARNX_LOG_LEVEL: 'error', CARNX_OTLP_TIMEOUT_MS: '4000', CARNX_INTERFACES_EXCLUDE: 'b, c' });
  c = load({ env, configFile });
  assert.equal([c.log.level, c.otlp.timeoutMs, c.interfaces.exclude], ['error', 4000, ['b', 'c']]);
  c = load({
    env,
    configFile,
    argv: ['--log-level=debug', '--otlp-timeout-ms', '5000', '--interfaces-exclude', 'x', '--interfaces-exclude=y'],
  });
  assert.equal([c.log.level, c.otlp.timeoutMs, c.interfaces.exclude], ['debug', 5000, ['x', 'y']]);
  assert.equal(
    load({ env: { CARNX_INTERFACES_EXCLUDE: '' } }).interfaces.exclude,
    [],
    'an empty variable clears the list',
  );
});

test('precedence for booleans: OTEL insecure < file < env "1" < flag --no-', () => {
  const configFile = file('insecure.yaml', 'otlp:\n  tls:\n    insecure: false\n');
  const env: NodeJS.ProcessEnv = { OTEL_EXPORTER_OTLP_INSECURE: 'TRUE' };
  assert.is(load({ env }).otlp.tls.insecure, true, 'OTEL booleans are case-insensitive');
  assert.is(load({ env, configFile }).otlp.tls.insecure, false);
  env.CARNX_OTLP_TLS_INSECURE = '1';
  assert.is(load({ env, configFile }).otlp.tls.insecure, true);
  assert.is(load({ env, configFile, argv: ['--no-otlp-tls-insecure'] }).otlp.tls.insecure, false);
  assert.is(load({ argv: ['--otlp-tls-insecure'] }).otlp.tls.insecure, true, 'a bare boolean flag is true');
  assert.is(load({ argv: ['--otlp-tls-insecure', 'false'] }).otlp.tls.insecure, false);
});

test('standard OTEL variables are translated; empty ones and OTEL_LOG_LEVEL are ignored', () => {
  const c = load({
    env: {
      OTEL_EXPORTER_OTLP_HEADERS: 'a=1',
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-team=abc%20def, x-dataset = carnx',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'NONE',
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '',
      OTEL_EXPORTER_OTLP_TIMEOUT: '7000',
      OTEL_EXPORTER_OTLP_CERTIFICATE: '/ca.pem',
      OTEL_EXPORTER_OTLP_CLIENT_KEY: '/key.pem',
      OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE: '/cert.pem',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4317',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'Delta',
      OTEL_LOG_LEVEL: 'debug',
    },
  });
  assert.equal(c.otlp, {
    endpoint: 'https://collector:4317',
    headers: { 'x-team': 'abc def', 'x-dataset': 'carnx' },
    headersFile: '',
    tls: { ca: '/ca.pem', cert: '/cert.pem', key: '/key.pem', insecure: false },
    compression: 'none',
    timeoutMs: 7000,
    temporality: 'delta',
  });
  assert.is(c.log.level, 'info');
});

test('the config file comes from configFile, else --config, else CARNX_CONFIG', () => {
  const a = file('a.yaml', 'log: { level: warn }\n');
  const b = file('b.yml', 'log: { level: error }\n');
  const c = file('c.json', '{"log": {"level": "debug"}}');
  assert.is(load({ env: { CARNX_CONFIG: a } }).log.level, 'warn');
  assert.is(load({ env: { CARNX_CONFIG: a }, argv: ['--config', b] }).log.level, 'error');
  assert.is(load({ env: { CARNX_CONFIG: a }, argv: [`--config=${b}`] }).log.level, 'error');
  assert.is(load({ env: { CARNX_CONFIG: a }, argv: ['--config', b], configFile: c }).log.level, 'debug');
});

test('YAML and JSON files give the same config', () => {
  const settings = {
    interfaces: { include: ['eth*', 'en?0'], exclude: [] },
    xdp: { mode: 'generic', replaceForeign: true },
    otlp: { endpoint: 'collector:4317', headers: { 'x-api-key': 'k' }, tls: { insecure: true }, timeoutMs: 1500 },
    resource: { attributes: { 'deployment.environment': 'prod' } },
    health: { listen: '[::1]:9400' },
  };
  const fromYaml = load({ configFile: file('same.yaml', YAML.stringify(settings)) });
  const fromJson = load({ configFile: file('same.json', JSON.stringify(settings, null, 2)) });
  assert.equal(fromYaml, fromJson);
  assert.equal(fromYaml.interfaces.include, ['eth*', 'en?0']);
  assert.is(fromYaml.xdp.mode, 'generic');
  assert.is(fromYaml.otlp.timeoutMs, 1500);
  assert.equal(fromYaml.resource.attributes, { 'deployment.environment': 'prod' });
  assert.is(fromYaml.log.level, 'info', 'keys the file leaves out keep their defaults');
  assert.is(otlpUsesTls(fromYaml), false);
  assert.is(otlpUsesTls(DEFAULTS), false);
  assert.is(otlpUsesTls({ ...DEFAULTS, otlp: { ...DEFAULTS.otlp, endpoint: 'collector:4317' } }), true);
});

test('a file with an unknown key, a wrong type, a bad glob, an out-of-range number and a bad enum: all listed', () => {
  const path = file(
    'bad.yaml',
    [
      'interfaces:',
      '  include: ["eth0", "["]',
      '  exclde: [lo]',
      'xdp:',
      '  mode: fast',
      '  replaceForeign: "true"',
      'export:',
      '  intervalMs: 50',
      'otlp:',
      '  compression: brotli',
      'log: info',
    ].join('\n'),
  );
  const problems = assertProblems({ configFile: path }, [
    'interfaces.include: entry 2 "[" is not a valid glob',
    'interfaces.exclde: unknown key',
    'xdp.mode: must be one of auto, native, generic, tc, got "fast"',
    'xdp.replaceForeign: must be true or false',
    'export.intervalMs: must be an integer between 100 and 3600000, got 50',
    'otlp.compression: must be one of gzip, none, got "brotli"',
    'log: must be a section',
  ]);
  for (const p of problems) assert.ok(p.endsWith(`(in ${path})`), `names the file: ${p}`);
});

test('env and flag values are validated, each problem naming the key and where the value came from', () => {
  assertProblems(
    {
      env: { CARNX_OTLP_TIMEOUT_MS: 'abc', CARNX_XDP_REPLACE_FOREIGN: 'yes', CARNX_INTERFACES_INCLUDE: 'eth0,,eth1' },
      argv: ['--xdp-mode', 'turbo', '--health-listen', '9400', '--otlp-endpoint', 'ftp://collector:4317'],
    },
    [
      'otlp.timeoutMs: must be an integer between 100 and 600000, got "abc" (from env CARNX_OTLP_TIMEOUT_MS)',
      'xdp.replaceForeign: must be true or false (from env and flags also 1 or 0), got "yes" (from env CARNX_XDP_REPLACE_FOREIGN)',
      'interfaces.include: entry 2 must be a non-empty string',
      'xdp.mode: must be one of auto, native, generic, tc, got "turbo" (from flag --xdp-mode)',
      'health.listen: must be host:port',
      'otlp.endpoint: must be http://host:port',
    ],
  );
});

test('interfaces.directions: each wrong entry named, an empty list and a repeated value refused', () => {
  const problems = (value: string) => failure({ argv: ['--interfaces-directions', value], env: {} }).problems;
  assert.equal(problems('receive,sideways'), [
    'interfaces.directions: must be a non-empty list of distinct values from receive, transmit, got "sideways" (from flag --interfaces-directions)',
  ]);
  assert.match(problems('receive,receive')[0] ?? '', /got a value twice/);
  assert.match(problems('')[0] ?? '', /got an empty list/);
  assert.equal(loadConfig({ argv: ['--interfaces-directions', 'transmit'], env: {} }).interfaces.directions, [
    'transmit',
  ]);
});

test('xdp.mode offload is refused with one line naming the key and where it came from, from every layer', () => {
  const why = 'offload is not supported: carnx does not bind its program to a NIC (use native or auto)';
  const [line] = assertProblems({ argv: ['--xdp-mode', 'offload'] }, [`xdp.mode: ${why}`]);
  assert.is(line, `xdp.mode: ${why} (from flag --xdp-mode)`);
  assertProblems({ env: { CARNX_XDP_MODE: 'offload' } }, [`xdp.mode: ${why} (from env CARNX_XDP_MODE)`]);
  const path = join(dir, 'offload.yaml');
  writeFileSync(path, 'xdp:\n  mode: offload\n');
  assertProblems({ configFile: path }, [`xdp.mode: ${why} (in ${path})`]);
  // A later layer that chooses a mode that works wins, as for any key.
  assert.is(load({ configFile: path, argv: ['--xdp-mode', 'native'] }).xdp.mode, 'native');
});

test('"0" means false and "1" true for strict booleans (convict alone would read "0" as true)', () => {
  const c = load({ env: { CARNX_XDP_REPLACE_FOREIGN: '0', CARNX_XDP_KEEP_ATTACHED_ON_EXIT: '1' } });
  assert.is(c.xdp.replaceForeign, false);
  assert.is(c.xdp.keepAttachedOnExit, true);
  assertProblems({ env: { CARNX_XDP_KEEP_ATTACHED_ON_EXIT: 'TRUE' } }, [
    'xdp.keepAttachedOnExit: must be true or false',
  ]);
});

test('unknown flags and stray arguments are all listed', () => {
  assertProblems(
    { argv: ['--otlp.timeoutMs=500', '--verbose', '--log-level', 'debug', 'run', '--bogus', 'value', '--xdp-mode'] },
    [
      '--otlp.timeoutMs: unknown flag (did you mean --otlp-timeout-ms?)',
      '--verbose: unknown flag',
      'argument 5: unexpected',
      '--bogus: unknown flag',
      '--xdp-mode: needs a value',
    ],
  );
});

test('missing, directory and wrongly named config files name the path', () => {
  const missing = join(dir, 'nope.yaml');
  assertProblems({ configFile: missing }, [`config file ${missing}: not found`]);
  const sub = join(dir, 'sub.yaml');
  mkdirSync(sub, { recursive: true });
  assertProblems({ configFile: sub }, [`config file ${sub}: is a directory`]);
  const toml = file('carnx.toml', 'x = 1');
  assertProblems({ configFile: toml }, [`config file ${toml}: unsupported extension ".toml"`]);
});

test('syntax errors give the line, and other layers are still checked', () => {
  const yaml = file('syntax.yaml', 'log:\n  level: info\notlp:\n  endpoint: [unclosed\n');
  const problems = assertProblems({ configFile: yaml, env: { CARNX_LOG_LEVEL: 'loud' } }, [
    `config file ${yaml}: YAML syntax error at line 5`,
    'log.level: must be one of',
  ]);
  assert.ok(problems.some((p) => p.includes('(from env CARNX_LOG_LEVEL)')));
  const json = file('syntax.json', '{\n  "log": {"level": "info"},,\n}\n');
  assertProblems({ configFile: json }, [`config file ${json}: JSON syntax error at line 2`]);
  const dup = file('dup.yaml', 'log:\n  level: info\n  level: warn\n');
  assertProblems({ configFile: dup }, [
    `config file ${dup}: YAML syntax error at line 3, column 3: Map keys must be unique`,
  ]);
});

test('dotted keys and near-miss keys in a file are reported with a hint; dotted map names work', () => {
  const path = file(
    'dotted.yaml',
    [
      '"otlp.endpoint": http://x:4317',
      'otlp:',
      '  timeout_ms: 100',
      'extra: { "a.b": 1, c: { d: 2 } }',
      'resource: { attributes: { service.name: web, deployment.environment: prod } }',
    ].join('\n'),
  );
  assertProblems({ configFile: path }, [
    'otlp.endpoint: not a valid key',
    'otlp.timeout_ms: unknown key (did you mean otlp.timeoutMs?)',
    'extra.a.b: unknown key',
    'extra.c.d: unknown key',
  ]);
  const attributes = { 'service.name': 'web', 'deployment.environment': 'prod' };
  assert.equal(
    load({ env: { CARNX_RESOURCE_ATTRIBUTES: 'service.name=web,deployment.environment=prod' } }).resource.attributes,
    attributes,
  );
  assert.equal(
    load({ configFile: file('attrs.yaml', YAML.stringify({ resource: { attributes } })) }).resource.attributes,
    attributes,
  );
});

test('otlp.tls cross-field checks name both keys', () => {
  assertProblems({ env: { CARNX_OTLP_TLS_CERT: '/c.pem' } }, [
    'otlp.tls.cert, otlp.tls.key: must be given together',
    'otlp.endpoint, otlp.tls.cert:',
  ]);
  assertProblems({ argv: ['--otlp-tls-insecure', '--otlp-endpoint', 'https://c:4317'] }, [
    'otlp.tls.insecure, otlp.endpoint: insecure (plaintext) contradicts',
  ]);
  assertProblems({ argv: ['--otlp-tls-insecure', '--otlp-endpoint', 'c:4317', '--otlp-tls-ca', '/ca.pem'] }, [
    'otlp.tls.insecure, otlp.tls.ca:',
  ]);
  assert.is(
    load({ argv: ['--otlp-endpoint', 'https://c:4317', '--otlp-tls-cert', '/c', '--otlp-tls-key', '/k'] }).otlp.tls.key,
    '/k',
  );
});

test('header values never reach the error text, and describeConfig redacts them', () => {
  const secrets = ['s3cr3t-env', 's3cr3t-file', 's3cr3t-arg', 's3cr3t-otel'];
  const path = file('headers.yaml', `otlp:\n  headers:\n    authorization: "Bearer ${secrets[1]}"\n    retries: 5\n`);
  const fromFile = failure({ configFile: path });
  const fromEnv = failure({
    env: { CARNX_OTLP_HEADERS: `authorization=Bearer ${secrets[0]},${secrets[0]}`, CARNX_LOG_LEVEL: 'x' },
  });
  const fromArgs = failure({
    argv: ['--otlp-headers', 'authorization=Bearer', secrets[2]!],
    env: { OTEL_EXPORTER_OTLP_HEADERS: secrets[3] },
  });
  assert.equal(fromFile.problems, [
    `otlp.headers: value of "retries" must be a string (quote numbers and booleans in YAML) (in ${path})`,
  ]);
  assert.ok(fromEnv.problems[0]!.startsWith('otlp.headers: entry 2 of 2 is not key=value'));
  for (const err of [fromFile, fromEnv, fromArgs]) {
    for (const secret of secrets) assert.not.match(`${err.message}\n${err.problems.join('\n')}`, secret);
    assert.not.match(err.message, /\n\s+at /, 'no stack trace in the message');
  }
  const config = load({ env: { CARNX_OTLP_HEADERS: `authorization=Bearer%20${secrets[0]}` } });
  assert.equal(config.otlp.headers, { authorization: `Bearer ${secrets[0]}` });
  const described = describeConfig(config) as { otlp: { headers: Record<string, string> } };
  assert.equal(described.otlp.headers, { authorization: '[redacted]' });
  assert.not.match(JSON.stringify(described), secrets[0]!);
  assert.is(config.otlp.headers.authorization, `Bearer ${secrets[0]}`, 'the config itself is not modified');
});

test('otlp.headersFile: name=value lines merged into otlp.headers, redacted; refused when group or others may read it', () => {
  const secret = 's3cr3t-headers-file';
  const path = file('otlp-headers', `# API keys\n\nx-api-key = ${secret}=x%20y \r\nx-dataset=carnx\n`);
  chmodSync(path, 0o600);
  const config = load({
    env: { CARNX_OTLP_HEADERS_FILE: path, OTEL_EXPORTER_OTLP_HEADERS: 'x-team=t' },
    argv: ['--otlp-endpoint', 'https://c:4317'],
  });
  assert.equal(config.otlp.headers, { 'x-team': 't', 'x-api-key': `${secret}=x%20y`, 'x-dataset': 'carnx' });
  assert.is(load({ argv: ['--otlp-headers-file', path] }).otlp.headers['x-dataset'], 'carnx', 'also from a flag');
  assert.not.match(JSON.stringify(describeConfig(config)), secret);

  const shown = (mode: number, text: string, options: Partial<LoadConfigOptions> = {}) => {
    const bad = file(`headers-${mode.toString(8)}`, text);
    chmodSync(bad, mode);
    const problems = assertProblems({ ...options, argv: ['--otlp-headers-file', bad] }, ['otlp.headersFile']);
    assert.not.match(problems.join('\n'), secret);
    return problems[0]!.replace(bad, '<file>');
  };
  assert.is(
    shown(0o640, `x-api-key=${secret}\n`),
    'otlp.headersFile: <file> is readable by group or others (mode 0640); chmod 600 it (from flag --otlp-headers-file)',
  );
  assert.match(shown(0o604, `x-api-key=${secret}\n`), '(mode 0604)');
  assert.match(shown(0o400, `x-api-key=${secret}\n${secret}\n`), 'line 2 is not name=value');
  assert.match(shown(0o600, `a=1\n=${secret}\n`), 'line 2 is not name=value');
  assert.match(shown(0o600, `a=1\nA=${secret}\n`, { env: { CARNX_OTLP_HEADERS: 'a=2' } }), '"A" set in both');
  assert.match(shown(0o600, `a=1\na=${secret}\n`), 'header "a" is given twice (line 2)');
  assertProblems({ argv: ['--otlp-headers-file', join(dir, 'none')] }, ['otlp.headersFile: ']);
  assert.match(failure({ argv: ['--otlp-headers-file', dir] }).problems[0]!, 'is not a regular file');
});

test('key=value lists and host:port parse as documented', () => {
  assert.equal(parseKeyValueList(' a = 1 ,b=x%2Cy=z,, '), { map: { a: '1', b: 'x,y=z' } });
  assert.equal(parseKeyValueList('a=1,a=2'), { error: 'key "a" is given twice' });
  assert.equal(parseKeyValueList('a=%E0%A4%A'), { error: 'value of "a" is not valid percent-encoding' });
  assert.equal(parseHostPort('[::1]:9400'), { host: '::1', port: 9400 });
  assert.equal(parseHostPort('node-1.example:0'), { host: 'node-1.example', port: 0 });
  assert.is(parseHostPort('host:65536'), undefined);
  assert.is(parseHostPort('::1:9400'), undefined);
});

test('endpoints: http(s) URLs without path or credentials, or host:port', () => {
  for (const ok of ['http://c:4317', 'https://api.honeycomb.io:443', 'HTTPS://c', 'c:4317', '[::1]:4317']) {
    assert.is(load({ argv: ['--otlp-endpoint', ok] }).otlp.endpoint, ok);
  }
  for (const bad of ['grpc://c:4317', 'http://c:4318/v1/metrics', 'collector', 'https://user:pw@c:4317']) {
    const [problem] = assertProblems({ argv: ['--otlp-endpoint', bad] }, ['otlp.endpoint: must be http://host:port']);
    assert.not.match(problem!, 'pw@', 'credentials are not echoed');
  }
});

test('the generated reference lists every key with its env variable, flag and default', () => {
  const reference = renderConfigReference();
  for (const k of configKeys()) {
    const row = reference.split('\n').find((line) => line.startsWith(`| \`${k.key}\` |`));
    assert.ok(row, `row for ${k.key}`);
    assert.ok(row.includes(`\`${k.env}\``) && row.includes(`\`--${k.arg}\``), `env and flag of ${k.key}`);
  }
  assert.ok(reference.includes('`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | `otlp.temporality`'));
  assert.ok(reference.includes('(&lt;package root&gt;/xdp/carnx.bpf.o)'), 'angle brackets are escaped');
});

test('the example config sets every key, to its default', () => {
  const path = join(root, 'config', 'carnx.example.yaml');
  const parsed = YAML.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  for (const k of configKeys()) {
    const value = k.key
      .split('.')
      .reduce<unknown>((node, name) => (node as Record<string, unknown> | undefined)?.[name], parsed);
    assert.ok(value !== undefined, `${k.key} is in the example`);
  }
  assert.equal(load({ configFile: path }), DEFAULTS);
});

test('resolveXdpObject: the shipped object under the package root, or xdp.object made absolute', () => {
  assert.is(packageRoot(), resolve(root));
  assert.ok(existsSync(join(packageRoot(), 'package.json')));
  assert.is(resolveXdpObject(DEFAULTS), join(resolve(root), 'xdp', 'carnx.bpf.o'));
  assert.is(resolveXdpObject({ ...DEFAULTS, xdp: { ...DEFAULTS.xdp, object: 'custom.o' } }), resolve('custom.o'));
});

test.run();
