// `npm run docs`: writes the configuration reference, generated from the schema, into README.md between its markers.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigReference } from '../dist/src/config/config-reference.js';

const readme = fileURLToPath(new URL('../README.md', import.meta.url));
const START = '<!-- config-reference:start -->';
const END = '<!-- config-reference:end -->';
const text = readFileSync(readme, 'utf8');
const [before, rest] = text.split(START);
const [, after] = rest.split(END);
writeFileSync(readme, `${before}${START}\n${renderConfigReference().trim()}\n${END}${after}`);
