// Renders the chart's generated parts: values.yaml's agent section and its schema, the config template, the README.
import YAML from 'yaml';
import { type JsonSchema, SECTION_DOCS } from './chart-config.js';
import { type ChartConfig, type ChartValue, type ConfigEntry, chartConfig } from './chart-model.js';

const SOURCES = 'by `npm run docs` from src/config/schema.ts and test/tools/chart-config.ts';
const VALUES_BEGIN = `# BEGIN generated ${SOURCES}; do not edit.`;
const VALUES_END = '# END generated.';
const README_BEGIN = `<!-- BEGIN generated ${SOURCES}; do not edit. -->`;
const README_END = '<!-- END generated. -->';
/** values.schema.json is JSON, without comments: each generated property says so in its $comment. */
const SCHEMA_MARK = `Generated ${SOURCES}; do not edit.`;
export const CONFIG_TEMPLATE = 'templates/_agent-config.tpl';
const WIDTH = 120;

/** Every generated chart file, by path under helm/carnx, as it should read given what each reads now. */
export function renderChartFiles(read: (path: string) => string): Map<string, string> {
  const chart = chartConfig();
  return new Map([
    ['values.yaml', between(read('values.yaml'), VALUES_BEGIN, VALUES_END, renderValues(chart.values), 'values.yaml')],
    ['values.schema.json', renderSchema(read('values.schema.json'), chart.values)],
    [CONFIG_TEMPLATE, renderConfigTemplate(chart.config)],
    ['README.md', between(read('README.md'), README_BEGIN, README_END, renderReadme(chart), 'README.md')],
  ]);
}

/** Replaces what lies between the begin and end marker lines. */
function between(text: string, begin: string, end: string, body: string, file: string): string {
  const start = text.indexOf(`${begin}\n`);
  const stop = text.indexOf(`\n${end}`, start);
  if (start < 0 || stop < 0) throw new Error(`helm/carnx/${file} lacks the lines ${begin} and ${end}`);
  return `${text.slice(0, start + begin.length + 1)}${body}${text.slice(stop + 1)}`;
}

type Tree<T> = Map<string, Tree<T> | T>;

/** Nests dotted paths into ordered mappings, in first-seen order. */
function tree<T>(items: readonly T[], path: (item: T) => string): Tree<T> {
  const root: Tree<T> = new Map();
  for (const item of items) {
    const parts = path(item).split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const next = node.get(part) ?? new Map();
      if (!(next instanceof Map)) throw new Error(`${path(item)}: ${part} is a value, not a mapping`);
      node.set(part, next);
      node = next;
    }
    const leaf = parts[parts.length - 1] ?? '';
    if (node.has(leaf)) throw new Error(`${path(item)} is given twice`);
    node.set(leaf, item);
  }
  return root;
}

/** The value's description, then its allowed values where the type alone does not say them. */
function describe(value: ChartValue, code: (text: string) => string): string {
  const { schema } = value;
  if (Array.isArray(schema.enum)) return `${value.doc} One of ${schema.enum.map((v) => code(String(v))).join(', ')}.`;
  if (schema.type !== 'integer' || schema.maximum === undefined) return value.doc;
  const range = `${schema.minimum} to ${schema.maximum}`;
  return `${value.doc} ${value.unit === 'milliseconds' ? `Milliseconds, ${range}.` : `An integer from ${range}.`}`;
}

/** A YAML scalar: plain where YAML reads it back as the same value, else JSON-quoted (JSON strings are YAML). */
function yamlScalar(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') throw new Error(`not a scalar: ${JSON.stringify(value)}`);
  return /^[A-Za-z0-9/][A-Za-z0-9._/-]*$/.test(value) && YAML.parse(value) === value ? value : JSON.stringify(value);
}

/** A value in YAML flow style: ["*"], {}, 5000. */
function yamlFlow(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(yamlFlow).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${yamlScalar(k)}: ${yamlFlow(v)}`)
      .join(', ')}}`;
  }
  return yamlScalar(value);
}

/** Words wrapped into lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

const plain = (text: string): string => text;
const code = (text: string): string => `\`${text}\``;

/** `# ` comment lines within the width. */
function comment(text: string, indent: string): string[] {
  return wrap(text, WIDTH - indent.length - 2).map((l) => `${indent}# ${l}`);
}

function renderValues(values: ChartValue[]): string {
  const lines: string[] = [];
  const walk = (node: Tree<ChartValue>, indent: string): void => {
    for (const [name, child] of node) {
      if (indent === '' && lines.length > 0) lines.push('');
      if (child instanceof Map) {
        lines.push(`${indent}${name}:`);
        walk(child, `${indent}  `);
        continue;
      }
      lines.push(...comment(describe(child, plain), indent));
      const flow = `${indent}${name}: ${yamlFlow(child.default)}`;
      if (!Array.isArray(child.default) || flow.length <= WIDTH) lines.push(flow);
      else lines.push(`${indent}${name}:`, ...child.default.map((v) => `${indent}  - ${yamlScalar(v)}`));
    }
  };
  walk(
    tree(values, (v) => v.path),
    '',
  );
  return `${lines.join('\n')}\n`;
}

function leafSchema(value: ChartValue): JsonSchema {
  const { type, ...constraints } = value.schema;
  const description = value.unit === undefined ? value.doc : `${value.doc} In ${value.unit}.`;
  return { type, description, ...constraints, default: value.default };
}

function sectionSchema(path: string, node: Tree<ChartValue>): JsonSchema {
  const properties = [...node].map(([name, child]) => {
    const childPath = `${path}.${name}`;
    return [name, child instanceof Map ? sectionSchema(childPath, child) : leafSchema(child)] as const;
  });
  return {
    type: 'object',
    description: SECTION_DOCS[path] ?? `The agent's ${path}.* settings.`,
    additionalProperties: false,
    properties: Object.fromEntries(properties),
  };
}

/** values.schema.json with the generated top-level properties replaced, placed where the first of them was. */
function renderSchema(current: string, values: ChartValue[]): string {
  const doc = JSON.parse(current) as { properties: Record<string, JsonSchema> };
  const generated: Record<string, JsonSchema> = {};
  for (const [name, child] of tree(values, (v) => v.path)) {
    generated[name] = {
      $comment: SCHEMA_MARK,
      ...(child instanceof Map ? sectionSchema(name, child) : leafSchema(child)),
    };
  }
  const properties: Record<string, JsonSchema> = {};
  let placed = false;
  for (const [name, property] of Object.entries(doc.properties)) {
    if (!(name in generated) && property.$comment !== SCHEMA_MARK) properties[name] = property;
    else if (!placed) {
      Object.assign(properties, generated);
      placed = true;
    }
  }
  if (!placed) Object.assign(properties, generated);
  return `${JSON.stringify({ ...doc, properties }, null, 2)}\n`;
}

function renderConfigTemplate(entries: ConfigEntry[]): string {
  const lines: string[] = [];
  const walk = (node: Tree<ConfigEntry>, indent: string): void => {
    for (const [name, child] of node) {
      if (child instanceof Map) {
        lines.push(`${indent}${name}:`);
        walk(child, `${indent}  `);
      } else if (child.when === undefined) lines.push(`${indent}${name}: ${child.expr}`);
      else lines.push(`${indent}{{- if ${child.when} }}`, `${indent}${name}: ${child.expr}`, `${indent}{{- end }}`);
    }
  };
  walk(
    tree(entries, (e) => e.key),
    '',
  );
  const about =
    `carnx.agentConfig: the agent's config file (carnx.yaml) from the values. Generated ${SOURCES}; do not edit. ` +
    'Every key of the config schema, in its order, but those the chart keeps out (README.md, "Agent configuration"). ' +
    'Strings, lists and mappings are written as JSON, which is YAML, so every string is quoted exactly.';
  const head = ['{{/*', ...wrap(about, WIDTH), '*/}}', '{{- define "carnx.agentConfig" -}}'];
  return `${[...head, ...lines, '{{- end }}'].join('\n')}\n`;
}

/** Markdown text: pipes escaped everywhere, angle brackets outside code spans (else read as HTML tags). */
function markdown(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/</g, '&lt;').replace(/>/g, '&gt;')))
    .join('')
    .replace(/\|/g, '\\|');
}

function defaultCell(value: unknown): string {
  const flow = yamlFlow(value);
  return Array.isArray(value) && flow.length > 40 ? `${value.length} entries, see \`values.yaml\`` : code(flow);
}

function renderReadme(chart: ChartConfig): string {
  const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  const lines = [
    row(['key', 'default', 'description']),
    row(['---', '---', '---']),
    ...chart.values.map((v) => row([code(v.path), defaultCell(v.default), markdown(describe(v, code))])),
    '',
    'Agent config keys that the chart does not pass through as they are:',
    '',
    row(['agent key', 'in the chart']),
    row(['---', '---']),
    ...chart.mappings.map((m) => {
      const defaults =
        m.defaults && `default ${code(yamlFlow(m.defaults.chart))} (carnx: ${code(yamlFlow(m.defaults.agent))})`;
      return row([code(m.key), markdown([m.how, defaults].filter(Boolean).join('; '))]);
    }),
  ];
  return `${lines.join('\n')}\n`;
}
