// Loads the config: schema defaults < OTEL_* env < config file < CARNX_* env < flags, validated strictly, every problem reported at once.
import convict from 'convict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type YAML from 'yaml';
import { ConfigError } from './config-error.js';
import { fileExpects, fromConvictMap, registerFormats, toConvictMap } from './formats.js';
import { readHeadersFile } from './headers-file.js';
import {
  CONFIG_FILE_ENV,
  CONFIG_FILE_FLAG,
  OTEL_ENV_TRANSLATIONS,
  configKeys,
  configSchema,
  type CarnxConfig,
  type ConfigKeySpec,
} from './schema.js';

export interface LoadConfigOptions {
  /** Flags only (`--name value`, `--name=value`); the caller strips the node binary, the script and any subcommand. */
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** Config file chosen by the caller; wins over --config and CARNX_CONFIG. */
  configFile?: string;
}

/** One value from one layer; `origin` ends every problem about it, e.g. "from env CARNX_LOG_LEVEL". */
interface Setting {
  key: string;
  value: unknown;
  origin: string;
}

type Problems = string[];

/** Values a key once accepted that can never work, each with why: one clear line instead of "must be one of". */
const RETIRED_VALUES: ReadonlyArray<{ key: string; value: string; why: string }> = [
  {
    key: 'xdp.mode',
    value: 'offload',
    why: 'offload is not supported: carnx does not bind its program to a NIC (use native or auto)',
  },
];

export function loadConfig(options: LoadConfigOptions): CarnxConfig {
  const keys = configKeys();
  const problems: Problems = [];
  const flags = flagSettings(options.argv, keys, problems);
  const file = options.configFile ?? flags.configFile ?? (options.env[CONFIG_FILE_ENV] || undefined);
  // Later layers win: each is applied with set(), in precedence order, so the order is this list.
  const layers: Setting[] = [
    ...otelEnvSettings(options.env),
    ...(file === undefined ? [] : fileSettings(resolve(file), problems)),
    ...keys
      .filter((k) => options.env[k.env] !== undefined)
      .map((k) => ({ key: k.key, value: options.env[k.env], origin: `from env ${k.env}` })),
    ...flags.settings,
  ];
  registerFormats(keys.map((k) => k.format));
  // Empty env and args: convict would otherwise read process.env/argv itself and re-apply them after every load().
  const config = convict(configSchema, { env: {}, args: [] });
  const origins = new Map<string, string>();
  for (const s of layers) {
    config.set(s.key, s.value);
    origins.set(s.key, s.origin);
  }
  const invalid = new Set<string>();
  for (const r of RETIRED_VALUES.filter((r) => config.get(r.key as never) === r.value)) {
    problems.push(`${r.key}: ${r.why} (${origins.get(r.key) ?? 'the default'})`);
    invalid.add(r.key);
    config.reset(r.key as never); // reported once, here, not again as "must be one of"
  }
  try {
    config.validate({ allowed: 'strict' });
  } catch (err) {
    problems.push(...(err as Error).message.split('\n').map((line) => rewordConvictLine(line, keys, origins, invalid)));
  }
  const values = config.getProperties();
  for (const { key } of keys.filter((k) => k.format === 'key-value-map')) updateLeaf(values, key, fromConvictMap);
  problems.push(...crossFieldProblems(values, invalid, origins));
  if (values.otlp.headersFile !== '' && !invalid.has('otlp.headersFile')) {
    problems.push(...mergeHeadersFile(values, origins.get('otlp.headersFile') ?? 'the default'));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values;
}

/** Adds the headers of otlp.headersFile to otlp.headers; a name in both is a problem (gRPC names ignore case). */
function mergeHeadersFile(config: CarnxConfig, origin: string): Problems {
  const read = readHeadersFile(resolve(config.otlp.headersFile));
  if ('problem' in read) return [`${read.problem} (${origin})`];
  const given = new Set(Object.keys(config.otlp.headers).map((n) => n.toLowerCase()));
  const twice = Object.keys(read.headers).filter((n) => given.has(n.toLowerCase()));
  if (twice.length > 0) {
    const names = twice.map((n) => JSON.stringify(n)).join(', ');
    return [`otlp.headersFile, otlp.headers: ${names} set in both; keep each header in one place (${origin})`];
  }
  config.otlp.headers = { ...config.otlp.headers, ...read.headers };
  return [];
}

/** The config for logging: secret values (otlp.headers) replaced by "[redacted]", their names kept. */
export function describeConfig(config: CarnxConfig): Record<string, unknown> {
  const copy = structuredClone(config);
  for (const { key } of configKeys().filter((k) => k.sensitive)) {
    updateLeaf(copy, key, (value) =>
      typeof value === 'object' && value !== null
        ? Object.fromEntries(Object.keys(value).map((name) => [name, '[redacted]']))
        : '[redacted]',
    );
  }
  return copy as unknown as Record<string, unknown>;
}

function updateLeaf(config: CarnxConfig, key: string, update: (value: unknown) => unknown): void {
  const path = key.split('.');
  const leaf = path.pop() ?? key;
  const parent = path.reduce(
    (node, name) => node[name] as Record<string, unknown>,
    config as unknown as Record<string, unknown>,
  );
  parent[leaf] = update(parent[leaf]);
}

/** Whether exports use TLS: https://, or no scheme unless otlp.tls.insecure (the gRPC exporter's own rule). */
export function otlpUsesTls(config: CarnxConfig): boolean {
  const scheme = schemeOf(config.otlp.endpoint);
  return scheme === undefined ? !config.otlp.tls.insecure : scheme === 'https';
}

function schemeOf(endpoint: string): string | undefined {
  return /^([a-z]+):\/\//i.exec(endpoint)?.[1]?.toLowerCase();
}

/** The directory holding carnx's package.json, found by walking up from this file (works from src/ and dist/src/). */
export function packageRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'carnx')
      return dir;
    if (dirname(dir) === dir)
      throw new Error(`cannot find carnx's package.json above ${fileURLToPath(import.meta.url)}`);
  }
}

/** Absolute path of the XDP object to load: xdp.object (relative to the working directory), or the one shipped with carnx. */
export function resolveXdpObject(config: CarnxConfig): string {
  return config.xdp.object !== '' ? resolve(config.xdp.object) : join(packageRoot(), 'xdp', 'carnx.bpf.o');
}

function otelEnvSettings(env: NodeJS.ProcessEnv): Setting[] {
  return OTEL_ENV_TRANSLATIONS.flatMap(({ key, vars, lowercase }) => {
    // The OTel spec treats an empty variable as unset.
    const name = vars.find((v) => (env[v] ?? '').trim() !== '');
    const raw = name === undefined ? undefined : env[name]?.trim();
    if (name === undefined || raw === undefined) return [];
    return [{ key, value: lowercase ? raw.toLowerCase() : raw, origin: `from env ${name}` }];
  });
}

/** Parses `--name value` and `--name=value`; booleans may stand alone or as `--no-name`. Values are never echoed (headers). */
function flagSettings(
  argv: string[],
  keys: ConfigKeySpec[],
  problems: Problems,
): { settings: Setting[]; configFile?: string } {
  const byArg = new Map(keys.map((k) => [k.arg, k]));
  const given = new Map<ConfigKeySpec, { values: string[]; origin: string }>();
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    const match = /^--([^=]+)(?:=(.*))?$/s.exec(token);
    if (!match) {
      problems.push(`argument ${i + 1}: unexpected (flags look like --name value; quote values that contain spaces)`);
      continue;
    }
    const [, name, inline] = match as unknown as [string, string, string | undefined];
    const negated = name.startsWith('no-') && byArg.get(name.slice(3))?.format === 'strict-boolean';
    const spec = byArg.get(negated ? name.slice(3) : name);
    const isBoolean = spec?.format === 'strict-boolean';
    const next = argv[i + 1];
    // A boolean may stand alone (then it is true); a value never starts with "--" (use --name=--value for that).
    const takesNext = inline === undefined && !negated && next !== undefined && !next.startsWith('--');
    if (name !== CONFIG_FILE_FLAG && spec === undefined) {
      const suggestion = byArg.has(kebab(name)) ? ` (did you mean --${kebab(name)}?)` : '';
      problems.push(`--${name}: unknown flag${suggestion}`);
      if (takesNext) i++; // its value is not a second problem
      continue;
    }
    const value = negated
      ? inline === undefined
        ? 'false'
        : undefined
      : (inline ?? (takesNext ? argv[++i] : isBoolean ? 'true' : undefined));
    if (value === undefined) {
      problems.push(`--${name}: ${negated ? 'takes no value' : 'needs a value'}`);
    } else if (spec === undefined) {
      configFile = value;
    } else {
      // Lists and maps accumulate over repeated flags; for anything else the last one wins.
      const prior = given.get(spec)?.values ?? [];
      const accumulates = spec.format === 'glob-list' || spec.format === 'key-value-map';
      given.set(spec, { values: accumulates ? [...prior, value] : [value], origin: `from flag --${name}` });
    }
  }
  const settings = [...given].map(([spec, { values, origin }]) => ({ key: spec.key, value: values.join(','), origin }));
  return { settings, configFile };
}

/** `otlp.timeoutMs` / `otlp_timeout_ms` / `Otlp.TimeoutMs` -> `otlp-timeout-ms`, to suggest the right flag. */
function kebab(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/[._]/g, '-')
    .toLowerCase();
}

function fileSettings(path: string, problems: Problems): Setting[] {
  const ext = extname(path).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(ext)) {
    problems.push(`config file ${path}: unsupported extension "${ext}" (use .yaml, .yml or .json)`);
    return [];
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'not found'
        : code === 'EACCES' || code === 'EPERM'
          ? 'not readable (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory'
            : `cannot be read (${code ?? (err as Error).message})`;
    problems.push(`config file ${path}: ${why}`);
    return [];
  }
  // JSON is parsed as YAML too (JSON is YAML 1.2): one parser, errors with line numbers, and no source excerpts that could hold secrets.
  // Required here, not imported: yaml is about 70 modules, and without a config file the agent starts without them.
  const yaml = createRequire(import.meta.url)('yaml') as typeof YAML;
  const doc = yaml.parseDocument(text, { uniqueKeys: true, logLevel: 'error' });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const what = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      const where = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : `offset ${e.pos[0]}`;
      problems.push(`config file ${path}: ${ext === '.json' ? 'JSON' : 'YAML'} syntax error at ${where}: ${what}`);
    }
    return [];
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) return []; // an empty file sets nothing
  if (!isMapping(data)) {
    problems.push(`config file ${path}: must hold a mapping of sections (interfaces:, otlp:, ...)`);
    return [];
  }
  const out: Setting[] = [];
  walkFile(data, '', configSchema as Record<string, unknown>, { origin: `in ${path}`, problems, out });
  return out;
}

/**
 * Splits the file into leaf settings. Unknown keys go through as leaves, so convict's strict validation names them.
 * No plain object reaches convict: its validate() walks them by dotted path and throws on names containing dots.
 */
function walkFile(
  node: Record<string, unknown>,
  prefix: string,
  schema: Record<string, unknown> | undefined,
  ctx: { origin: string; problems: Problems; out: Setting[] },
): void {
  for (const [name, value] of Object.entries(node)) {
    const key = prefix + name;
    const child =
      schema !== undefined && Object.hasOwn(schema, name) ? (schema[name] as Record<string, unknown>) : undefined;
    const expects = child !== undefined && 'default' in child ? fileExpects(String(child.format)) : undefined;
    if (name.includes('.') || ['__proto__', 'constructor', 'prototype'].includes(name)) {
      const why =
        schema === undefined ? 'unknown key' : 'not a valid key; write nested sections as mappings, not dotted names';
      ctx.problems.push(`${key}: ${why} (${ctx.origin})`);
    } else if (expects !== undefined && typeof value === 'string') {
      const shown = child?.sensitive === true ? 'a string' : `the string ${JSON.stringify(value.slice(0, 80))}`;
      ctx.problems.push(`${key}: must be ${expects}, got ${shown} (${ctx.origin})`);
    } else if (child !== undefined && 'default' in child) {
      ctx.out.push({ key, value: toConvictMap(value), origin: ctx.origin });
    } else if (isMapping(value) && (child !== undefined || Object.keys(value).length > 0)) {
      walkFile(value, `${key}.`, child, ctx);
    } else if (child === undefined) {
      ctx.out.push({ key, value, origin: ctx.origin });
    } else if (value !== null) {
      // `otlp:` with every key commented out is an empty section
      ctx.problems.push(
        `${key}: must be a section (a mapping of keys), got ${Array.isArray(value) ? 'a list' : `a ${typeof value}`} (${ctx.origin})`,
      );
    }
  }
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** convict reports `key: message: value was "x"`; keep the message (it says what it got), add where the value came from. */
function rewordConvictLine(
  line: string,
  keys: ConfigKeySpec[],
  origins: Map<string, string>,
  invalid: Set<string>,
): string {
  const originOf = (key: string) => {
    for (let k = key; k !== ''; k = k.includes('.') ? k.slice(0, k.lastIndexOf('.')) : '')
      if (origins.has(k)) return ` (${origins.get(k)})`;
    return ' (the default)';
  };
  const undeclared = /^configuration param '(.+)' not declared in the schema$/.exec(line);
  if (undeclared?.[1] !== undefined) {
    const key = undeclared[1];
    const near = keys.find(
      (k) => k.key.replace(/[^a-z0-9]/gi, '').toLowerCase() === key.replace(/[^a-z0-9]/gi, '').toLowerCase(),
    );
    return `${key}: unknown key${near ? ` (did you mean ${near.key}?)` : ''}${originOf(key)}`;
  }
  const missing = /^configuration param '(.+)' missing from config/.exec(line);
  if (missing?.[1] !== undefined) {
    return `${missing[1]}: missing; a parent section was replaced by a value${originOf(missing[1])}`;
  }
  const invalidValue = /^([^:\s]+): (.*)$/.exec(line);
  if (!invalidValue) return line;
  const [, key, message] = invalidValue as unknown as [string, string, string];
  invalid.add(key);
  const cut = message.indexOf(': value was ');
  return `${key}: ${cut < 0 ? message : message.slice(0, cut)}${originOf(key)}`;
}

/** Checks between keys, each problem naming every key involved; skipped where a key is already invalid on its own. */
function crossFieldProblems(config: CarnxConfig, invalid: Set<string>, origins: Map<string, string>): Problems {
  const problems: Problems = [];
  const tls = config.otlp.tls;
  const scheme = schemeOf(config.otlp.endpoint);
  const check = (keys: string[], bad: boolean, why: string) => {
    if (!bad || keys.some((k) => invalid.has(k))) return;
    const from = keys.filter((k) => origins.has(k)).map((k) => `${k} ${origins.get(k)}`);
    problems.push(`${keys.join(', ')}: ${why}${from.length > 0 ? ` (${from.join('; ')})` : ''}`);
  };
  check(
    ['otlp.tls.cert', 'otlp.tls.key'],
    (tls.cert === '') !== (tls.key === ''),
    'must be given together (mutual TLS needs both)',
  );
  check(
    ['otlp.tls.insecure', 'otlp.endpoint'],
    tls.insecure && scheme === 'https',
    'insecure (plaintext) contradicts an https:// endpoint',
  );
  check(
    ['otlp.tls.insecure', 'otlp.tls.ca'],
    tls.insecure && tls.ca !== '',
    'insecure (plaintext) contradicts a CA file',
  );
  check(
    ['otlp.tls.insecure', 'otlp.tls.cert'],
    tls.insecure && tls.cert !== '',
    'insecure (plaintext) contradicts a client certificate',
  );
  check(
    ['otlp.endpoint', 'otlp.tls.ca'],
    scheme === 'http' && tls.ca !== '',
    'an http:// endpoint is plaintext, so the CA file would be ignored; use https://',
  );
  check(
    ['otlp.endpoint', 'otlp.tls.cert'],
    scheme === 'http' && tls.cert !== '',
    'an http:// endpoint is plaintext, so the client certificate would be ignored; use https://',
  );
  return problems;
}
