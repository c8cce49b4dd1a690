// Renders the Markdown config reference (key, env variable, flag, default, description) from the schema, so docs cannot drift.
import { describeFormat } from './formats.js';
import { CONFIG_FILE_ENV, CONFIG_FILE_FLAG, OTEL_ENV_TRANSLATIONS, configKeys } from './schema.js';

/** Table cells: pipes would split the cell, newlines would end the row. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

/** Prose: `<package root>` would otherwise be read as an HTML tag and vanish. */
function prose(text: string): string {
  return text.replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function code(text: string): string {
  return `\`${text}\``;
}

function renderDefault(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? code('[]') : value.map((v) => code(String(v))).join(', ');
  if (typeof value === 'string') return value === '' ? code('""') : code(value);
  return code(JSON.stringify(value));
}

export function renderConfigReference(): string {
  const rows = configKeys().map((k) =>
    [
      code(k.key),
      code(k.env),
      code(`--${k.arg}`),
      renderDefault(k.default),
      `${prose(k.doc)} *${describeFormat(k.format)}.*`,
    ]
      .map(cell)
      .join(' | '),
  );
  const otelRows = OTEL_ENV_TRANSLATIONS.map((t) => `| ${t.vars.map(code).join(', ')} | ${code(t.key)} |`);
  return [
    '<!-- Generated from src/config/schema.ts by renderConfigReference(); edit the schema, not this table. -->',
    '',
    'Each key is read from, lowest precedence first: its default; the standard OpenTelemetry variable for it (table',
    `below); the config file (YAML or JSON, from ${code(`--${CONFIG_FILE_FLAG} <file>`)} or ${code(CONFIG_FILE_ENV)}); its`,
    `${code('CARNX_*')} variable; its flag. Unknown keys and flags, wrong types and out-of-range values stop carnx with every problem`,
    'listed. In the file, values have their YAML type (booleans and numbers unquoted, lists, mappings); in variables and',
    'flags, booleans are `true`, `false`, `1` or `0`, lists are comma-separated and mappings are `k1=v1,k2=v2` with',
    'percent-encoded values. List and mapping flags may be repeated.',
    '',
    '| Key | Env | Flag | Default | Description |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r} |`),
    '',
    'Standard OpenTelemetry variables read (the first one set wins; `OTEL_LOG_LEVEL` is not used, see `log.level`):',
    '',
    '| Variable | Key |',
    '| --- | --- |',
    ...otelRows,
    '',
  ].join('\n');
}
