// The convict formats carnx's config schema uses: strict booleans, glob lists, key=value maps, bounded integers, paths, endpoints, enums.
import convict from 'convict';
import picomatch from 'picomatch';
import { GLOB_OPTIONS } from '../interfaces/interface-selector.js';

/** How one format validates, converts env/flag strings, and is described. */
interface FormatSpec {
  /** Throws an Error whose one-line message says what is wrong. Never echoes key-value-map values (they may be secrets). */
  validate(value: unknown): void;
  /** Converts an env or flag string; never throws: an unparseable string is returned as is, and validate() explains why. */
  coerce?(raw: string): unknown;
  /** For the config reference: what values look like. */
  describe: string;
  /** What a config file must hold (strings are converted only from env and flags); undefined means a string. */
  fileExpects?: string;
}

/** Names a bounded integer of milliseconds, e.g. durationMs(100, 600000) -> "duration-ms:100..600000". */
export function durationMs(min: number, max: number): string {
  return `duration-ms:${min}..${max}`;
}

/** Names an enum format, e.g. oneOf('gzip', 'none') -> "enum:gzip|none". */
export function oneOf(...values: string[]): string {
  return `enum:${values.join('|')}`;
}

/** Names a non-empty list of distinct values from an enum, e.g. setOf('receive', 'transmit') -> "set:receive|transmit". */
export function setOf(...values: string[]): string {
  return `set:${values.join('|')}`;
}

/** Registers every named format with convict. Idempotent: registering a name again installs an identical format. */
export function registerFormats(names: Iterable<string>): void {
  for (const name of new Set(names)) {
    const spec = formatSpec(name);
    convict.addFormat({ name, validate: (value: unknown) => spec.validate(value), coerce: spec.coerce });
  }
}

/** What a value of this format looks like, for the config reference. */
export function describeFormat(name: string): string {
  return formatSpec(name).describe;
}

/** What a config file must hold for this format, or undefined when a string is right. */
export function fileExpects(name: string): string | undefined {
  return formatSpec(name).fileExpects;
}

/** Parses "k1=v1,k2=v2" as OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS are written; values are percent-decoded. */
export function parseKeyValueList(raw: string): { map: Record<string, string> } | { error: string } {
  const map = new Map<string, string>(); // a Map, so a key like "__proto__" is data, not a prototype
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  for (const [i, entry] of entries.entries()) {
    const eq = entry.indexOf('=');
    // Entries are not echoed: for headers the whole entry may be a token pasted without its name.
    if (eq <= 0) return { error: `entry ${i + 1} of ${entries.length} is not key=value` };
    const key = entry.slice(0, eq).trim();
    if (map.has(key)) return { error: `key ${JSON.stringify(key)} is given twice` };
    try {
      map.set(key, decodeURIComponent(entry.slice(eq + 1).trim()));
    } catch {
      return { error: `value of ${JSON.stringify(key)} is not valid percent-encoding` };
    }
  }
  return { map: Object.fromEntries(map) };
}

/** Splits "host:port" or "[v6]:port"; port 0 means "any free port". */
export function parseHostPort(raw: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2];
  if (host === undefined || port > 65535) return undefined;
  return { host, port };
}

/** A short description of a value for error messages; long strings are cut so a pasted file does not flood the log. */
function show(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value !== 'string') return JSON.stringify(value) ?? typeof value;
  // Credentials pasted into a URL are secrets too.
  const masked = value.replace(/\/\/[^/@\s]*@/, '//[redacted]@');
  return JSON.stringify(masked.length > 80 ? `${masked.slice(0, 77)}...` : masked);
}

function fail(message: string): never {
  throw new Error(message);
}

const strictBoolean: FormatSpec = {
  validate(value) {
    if (typeof value !== 'boolean') fail(`must be true or false (from env and flags also 1 or 0), got ${show(value)}`);
  },
  // convict's own Boolean turns every string but "false" into true, so CARNX_XDP_REPLACE_FOREIGN=0 would mean true.
  coerce(raw) {
    switch (raw) {
      case 'true':
      case '1':
        return true;
      case 'false':
      case '0':
        return false;
      default:
        return raw;
    }
  },
  describe: 'true or false (env and flags: true, false, 1, 0)',
  fileExpects: 'true or false without quotes',
};

const globList: FormatSpec = {
  validate(value) {
    if (!Array.isArray(value)) fail(`must be a list of interface names or globs, got ${show(value)}`);
    const bad: string[] = [];
    for (const [i, glob] of (value as unknown[]).entries()) {
      if (typeof glob !== 'string' || glob === '') {
        bad.push(`entry ${i + 1} must be a non-empty string, got ${show(glob)}`);
        continue;
      }
      try {
        picomatch.makeRe(glob, GLOB_OPTIONS);
      } catch (err) {
        bad.push(`entry ${i + 1} ${show(glob)} is not a valid glob: ${(err as Error).message}`);
      }
    }
    if (bad.length > 0) fail(bad.join('; '));
  },
  coerce: (raw) => (raw.trim() === '' ? [] : raw.split(',').map((g) => g.trim())),
  describe: 'list of interface names or picomatch globs (env and flags: comma-separated)',
  fileExpects: 'a list, e.g. [eth0, "en*"]',
};

/**
 * Maps travel through convict as Map objects: convict's validate() walks plain objects by dotted path and throws on
 * names that contain dots (deployment.environment), while it treats a Map as one value. loadConfig converts back.
 */
export function toConvictMap(value: unknown): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Map)
    ? new Map(Object.entries(value))
    : value;
}

export function fromConvictMap(value: unknown): unknown {
  return value instanceof Map ? Object.fromEntries(value) : value;
}

const keyValueMap: FormatSpec = {
  validate(value) {
    // A string here is one that coerce() could not parse: parse it again to say why.
    if (typeof value === 'string') {
      const parsed = parseKeyValueList(value);
      fail('error' in parsed ? `${parsed.error} (expected k1=v1,k2=v2)` : 'must be a mapping');
    }
    const converted = toConvictMap(value);
    if (!(converted instanceof Map)) fail(`must be a mapping of names to strings, got ${show(value)}`);
    for (const [key, item] of converted) {
      if (typeof key !== 'string' || key.trim() === '') fail('names must not be empty');
      if (typeof item !== 'string')
        fail(`value of ${JSON.stringify(key)} must be a string (quote numbers and booleans in YAML)`);
    }
  },
  coerce(raw) {
    const parsed = parseKeyValueList(raw);
    return 'map' in parsed ? toConvictMap(parsed.map) : raw;
  },
  describe: 'mapping of name to string (env and flags: k1=v1,k2=v2 with percent-encoded values)',
  fileExpects: 'a mapping of names to strings',
};

function stringFormat(describe: string, check: (value: string) => boolean): FormatSpec {
  return {
    validate(value) {
      if (typeof value !== 'string' || value.includes('\0') || !check(value))
        fail(`must be ${describe}, got ${show(value)}`);
    },
    describe,
  };
}

function isOtlpEndpoint(value: string): boolean {
  if (!value.includes('://')) return (parseHostPort(value)?.port ?? 0) > 0;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  // gRPC has no path, and credentials in the URL would never be sent (headers carry them).
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.hostname !== '' &&
    url.pathname === '/' &&
    url.search === '' &&
    url.hash === '' &&
    url.username === '' &&
    url.password === ''
  );
}

function boundedInt(min: number, max: number): FormatSpec {
  return {
    validate(value) {
      if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
        fail(`must be an integer between ${min} and ${max}, got ${show(value)}`);
      }
    },
    coerce: (raw) => (/^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : raw),
    describe: `integer, milliseconds, ${min} to ${max}`,
    fileExpects: 'an integer without quotes',
  };
}

function enumeration(values: string[]): FormatSpec {
  return {
    validate(value) {
      if (typeof value !== 'string' || !values.includes(value))
        fail(`must be one of ${values.join(', ')}, got ${show(value)}`);
    },
    describe: `one of ${values.map((v) => `\`${v}\``).join(', ')}`,
  };
}

function enumSet(values: string[]): FormatSpec {
  return {
    validate(value) {
      const list = Array.isArray(value) ? (value as unknown[]) : undefined;
      const bad = list?.filter((v) => typeof v !== 'string' || !values.includes(v)) ?? [];
      const expected = `a non-empty list of distinct values from ${values.join(', ')}`;
      if (list === undefined) fail(`must be ${expected}, got ${show(value)}`);
      // The values are names from a fixed set, never secrets: say exactly which one is wrong.
      if (bad.length > 0) fail(`must be ${expected}, got ${bad.map((v) => show(v)).join(', ')}`);
      if (list.length === 0) fail(`must be ${expected}, got an empty list`);
      if (new Set(list).size !== list.length) fail(`must be ${expected}, got a value twice`);
    },
    coerce: (raw) => (raw.trim() === '' ? [] : raw.split(',').map((v) => v.trim())),
    describe: `non-empty list of ${values.map((v) => `\`${v}\``).join(', ')} (env and flags: comma-separated)`,
    fileExpects: `a list, e.g. [${values.join(', ')}]`,
  };
}

function formatSpec(name: string): FormatSpec {
  switch (name) {
    case 'strict-boolean':
      return strictBoolean;
    case 'glob-list':
      return globList;
    case 'key-value-map':
      return keyValueMap;
    case 'file-path-or-empty':
      return stringFormat('a file path or ""', () => true);
    case 'absolute-path':
      return stringFormat('an absolute path', (v) => v.startsWith('/'));
    case 'host-port-or-empty':
      return stringFormat(
        'host:port (e.g. 127.0.0.1:9400 or [::1]:9400) or "" (disabled)',
        (v) => v === '' || parseHostPort(v) !== undefined,
      );
    case 'otlp-endpoint':
      return stringFormat('http://host:port, https://host:port or host:port (no path, no credentials)', isOtlpEndpoint);
  }
  const range = /^duration-ms:(\d+)\.\.(\d+)$/.exec(name);
  if (range) return boundedInt(Number(range[1]), Number(range[2]));
  if (name.startsWith('enum:')) return enumeration(name.slice('enum:'.length).split('|'));
  if (name.startsWith('set:')) return enumSet(name.slice('set:'.length).split('|'));
  throw new Error(`unknown config format ${JSON.stringify(name)}`);
}
