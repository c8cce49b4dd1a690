// Where a bench run's numbers go: one JSON file per day under test/bench/results/, with the machine they came from.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { repoPath } from '../fixtures/repo.js';

export interface Machine {
  nproc: number;
  cpu: string;
  kernel: string;
  node: string;
  /** 1-, 5- and 15-minute load averages when the bench started and when it ended. */
  loadavg: { start: number[]; end: number[] };
}

export function machineAtStart(): Machine {
  const load = loadavg().map((n) => Number(n.toFixed(2)));
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    loadavg: { start: load, end: load },
  };
}

/** Writes test/bench/results/<YYYY-MM-DD>.json (a later run that day replaces it); returns the path. */
export function writeResults(machine: Machine, results: Record<string, unknown>): string {
  const ended = new Date();
  const end = loadavg().map((n) => Number(n.toFixed(2)));
  const doc = { date: ended.toISOString(), machine: { ...machine, loadavg: { ...machine.loadavg, end } }, ...results };
  const dir = repoPath('test', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const path = `${dir}/${ended.toISOString().slice(0, 10)}.json`;
  writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
  return path;
}
