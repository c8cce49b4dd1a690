// Where a bench run's numbers go: one JSON file per day and host under test/bench/results/, with the machine.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname, loadavg, release } from 'node:os';
import { repoPath } from '../fixtures/repo.js';

export interface Machine {
  host: string;
  nproc: number;
  cpu: string;
  kernel: string;
  node: string;
  /** 1-, 5- and 15-minute load averages when the bench started and when it ended. */
  loadavg: { start: number[]; end: number[] };
}

/** A results file: when it was written, on what, and one key per section that ran (see run.ts). */
export interface ResultsDoc {
  date: string;
  machine: Machine;
  [section: string]: unknown;
}

export const RESULTS_DIR = repoPath('test', 'bench', 'results');

export function machineAtStart(): Machine {
  const load = loadavg().map((n) => Number(n.toFixed(2)));
  return {
    host: hostname(),
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    loadavg: { start: load, end: load },
  };
}

/** A name safe in a file name: letters, digits, dots and dashes. */
const safe = (text: string) => text.replace(/[^A-Za-z0-9.-]+/g, '_');

/**
 * Writes test/bench/results/<YYYY-MM-DD>-<host>.json, or <YYYY-MM-DD>-<host>-<section>....json for a run of some
 * sections only, so it does not replace that day's full run; a later run of the same kind replaces it. Returns the path.
 */
export function writeResults(machine: Machine, results: Record<string, unknown>, partial = false): string {
  const ended = new Date();
  const end = loadavg().map((n) => Number(n.toFixed(2)));
  const doc = { date: ended.toISOString(), machine: { ...machine, loadavg: { ...machine.loadavg, end } }, ...results };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const sections = partial ? `-${Object.keys(results).join('-')}` : '';
  const path = `${RESULTS_DIR}/${ended.toISOString().slice(0, 10)}-${safe(machine.host)}${sections}.json`;
  writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
  return path;
}

/** Every results file, newest first (by the date inside, not the name: older files have no host in theirs). */
export function readAllResults(dir = RESULTS_DIR): Array<{ file: string; doc: ResultsDoc }> {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((file) => ({ file, doc: JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as ResultsDoc }))
    .sort((a, b) => b.doc.date.localeCompare(a.doc.date));
}
