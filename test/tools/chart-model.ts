// The chart's agent configuration, resolved: the config schema with the chart's overrides applied, key by key.
import { configKeys } from '../../src/config/schema.js';
import { type JsonSchema, KEY_OVERRIDES, type KeyOverride } from './chart-config.js';

/** The JSON schema of a convict format, as near as JSON schema gets; the agent validates again at start. */
function formatSchema(format: string): JsonSchema {
  const range = /^duration-ms:(\d+)\.\.(\d+)$/.exec(format);
  if (range) return { type: 'integer', minimum: Number(range[1]), maximum: Number(range[2]) };
  if (format.startsWith('enum:')) return { type: 'string', enum: format.slice('enum:'.length).split('|') };
  if (format.startsWith('set:')) {
    const values = format.slice('set:'.length).split('|');
    return { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: values } };
  }
  switch (format) {
    case 'strict-boolean':
      return { type: 'boolean' };
    case 'glob-list':
      return { type: 'array', items: { type: 'string', minLength: 1 } };
    case 'key-value-map':
      return { type: 'object', additionalProperties: { type: 'string' } };
    case 'file-path-or-empty':
      return { type: 'string' };
    case 'absolute-path':
      return { type: 'string', pattern: '^/' };
    case 'host-port-or-empty':
      return { type: 'string', pattern: '^$|^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$' };
    case 'otlp-endpoint':
      return { type: 'string', pattern: '^(https?://)?[A-Za-z0-9.\\-\\[\\]:]+:[0-9]{1,5}/?$' };
  }
  throw new Error(`no JSON schema for config format ${JSON.stringify(format)}: add one to test/tools/chart-model.ts`);
}

/** One value of the chart's agent section, in values.yaml order. */
export interface ChartValue {
  path: string;
  /** What it is for; ends with a full stop. */
  doc: string;
  default: unknown;
  schema: JsonSchema;
  /** The unit of an integer, when it has one. */
  unit?: 'milliseconds';
}

/** One key of the agent's config file, as the ConfigMap writes it. */
export interface ConfigEntry {
  key: string;
  /** The template text after `key: `. */
  expr: string;
  /** A template condition it is written under. */
  when?: string;
}

/** An agent key that the chart does not pass through as it is. */
export interface KeyMapping {
  key: string;
  how: string;
  /** The chart's default and the agent's, when they differ. */
  defaults?: { chart: unknown; agent: unknown };
}

export interface ChartConfig {
  values: ChartValue[];
  config: ConfigEntry[];
  mappings: KeyMapping[];
}

const join = (...parts: (string | undefined)[]): string => parts.filter((p) => p !== undefined).join(' ');

/** Resolves the schema and the overrides into the chart's values, config file and key mappings. */
export function chartConfig(): ChartConfig {
  const keys = configKeys();
  const stale = Object.keys(KEY_OVERRIDES).filter((k) => !keys.some((spec) => spec.key === k));
  if (stale.length > 0) throw new Error(`KEY_OVERRIDES names keys the config schema lacks: ${stale.join(', ')}`);
  const out: ChartConfig = { values: [], config: [], mappings: [] };
  for (const spec of keys) {
    const o: KeyOverride = KEY_OVERRIDES[spec.key] ?? {};
    const value = o.value === undefined ? spec.key : o.value;
    const custom = o.value !== undefined || o.config !== undefined || o.configIf !== undefined;
    if (custom && o.how === undefined) throw new Error(`KEY_OVERRIDES['${spec.key}'] must say how the chart sets it`);
    if (value === null && o.config === undefined) throw new Error(`KEY_OVERRIDES['${spec.key}'] has no value to write`);
    // A renamed value (health.port for health.listen) has defaults of its own; its `how` tells the story.
    const differs = value === spec.key && 'default' in o && JSON.stringify(o.default) !== JSON.stringify(spec.default);
    if (differs && o.note === undefined && o.doc === undefined) {
      throw new Error(`KEY_OVERRIDES['${spec.key}'] changes the default: its note must say why`);
    }
    out.values.push(...(o.before ?? []));
    if (value !== null) {
      const schema = formatSchema(spec.format);
      out.values.push({
        path: value,
        doc: join(o.doc ?? spec.doc, o.note),
        default: 'default' in o ? o.default : spec.default,
        schema: o.schema ? o.schema(schema) : schema,
        ...(spec.format.startsWith('duration-ms:') ? { unit: 'milliseconds' as const } : {}),
      });
    }
    out.values.push(...(o.after ?? []));
    if (o.config !== null) {
      const expr = o.config ?? `{{ ${configFunction(spec.format)}.Values.${value} }}`;
      out.config.push({ key: spec.key, expr, ...(o.configIf === undefined ? {} : { when: o.configIf }) });
    }
    if (o.how !== undefined || differs) {
      out.mappings.push({
        key: spec.key,
        how: o.how ?? `\`${value}\``,
        ...(differs ? { defaults: { chart: o.default, agent: spec.default } } : {}),
      });
    }
  }
  return out;
}

/** How a value of this format is written into the config file: JSON quotes every string exactly. */
function configFunction(format: string): string {
  if (format === 'strict-boolean') return '';
  if (format.startsWith('duration-ms:')) return 'int64 ';
  return 'toJson ';
}
