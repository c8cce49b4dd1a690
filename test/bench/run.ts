// `npm run bench`: every benchmark section, each printed as ratios against a baseline measured in the same process.
//
// A section is one line in SECTIONS below:
//   { name, target, run, print }
//   - name:   its key in the results JSON (test/bench/results/<date>-<host>.json) and on the command line;
//   - target: 'failing'  a missed target makes the bench exit 1 (machines this noisy can still be trusted with it);
//             'reported' a missed target is printed, by how much, and the exit code ignores it;
//   - run():  measures (sync or async) and returns plain JSON-able data, with the baseline inside it;
//   - print(result): prints the table and the verdict (by how much a target was missed); returns whether it was met.
// `node dist/test/bench/run.js live-pps throughput` runs only the sections named (default: all), in this order, and
// writes <date>-<host>-<sections>.json, leaving that day's full run in place.
import { requireRoot } from '../fixtures/privileges.js';
import { benchCollection, printCollection } from './collection.js';
import { benchLivePps, printLivePps } from './live-pps.js';
import { HOOKS, benchPerPacket, printPerPacket } from './per-packet.js';
import { machineAtStart, writeResults } from './results.js';
import { benchStartup, printStartup } from './startup.js';
import { benchThroughput, printThroughput } from './tcp-throughput.js';

interface BenchSection<R = unknown> {
  name: string;
  target: 'failing' | 'reported';
  run(): R | Promise<R>;
  print(result: R): boolean;
}

/** Types each section's run() and print() against each other, then forgets R for the list. */
const section = <R>(s: BenchSection<R>): BenchSection => s as BenchSection;

/** XDP's per-packet target: ns over a bare program, through BPF_PROG_TEST_RUN. */
const PER_PACKET_TARGET_NS = 5;

const SECTIONS: BenchSection[] = [
  section({
    name: 'perPacket',
    target: 'failing',
    run: () => HOOKS.map((hook) => benchPerPacket(hook, PER_PACKET_TARGET_NS)),
    // The TC rows inside are reported only: printPerPacket returns false only for a gating hook's miss.
    print: (results) => results.map((r) => printPerPacket(r)).every(Boolean),
  }),
  section({ name: 'livePps', target: 'reported', run: () => benchLivePps(), print: printLivePps }),
  section({ name: 'throughput', target: 'reported', run: () => benchThroughput(), print: printThroughput }),
  section({ name: 'collection', target: 'reported', run: () => benchCollection(), print: printCollection }),
  // Reported only: verifying one program per interface and direction puts 100 interfaces above 1 s (README).
  section({ name: 'startup', target: 'reported', run: () => benchStartup(), print: printStartup }),
];

/** Command-line names: the key or its kebab-case form (live-pps). */
const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

async function main(args: string[]): Promise<number> {
  const unknown = args.filter((a) => !SECTIONS.some((s) => s.name === a || kebab(s.name) === a));
  if (unknown.length > 0) {
    console.error(
      `bench: no section ${unknown.join(', ')}; sections: ${SECTIONS.map((s) => kebab(s.name)).join(', ')}`,
    );
    return 2;
  }
  const chosen = SECTIONS.filter((s) => args.length === 0 || args.includes(s.name) || args.includes(kebab(s.name)));
  requireRoot('the benchmarks');
  const machine = machineAtStart();
  console.log(
    `machine: ${machine.host}, ${machine.nproc} CPUs (${machine.cpu}), kernel ${machine.kernel}, load ${machine.loadavg.start}`,
  );
  const results: Record<string, unknown> = {};
  const missed: string[] = [];
  for (const s of chosen) {
    const result = await s.run();
    results[s.name] = result;
    const met = s.print(result);
    if (!met && s.target === 'failing') missed.push(s.name);
    else if (!met) console.log(`(${s.name}: reported only, the exit code ignores it)`);
  }
  console.log(`\nresults: ${writeResults(machine, results, chosen.length < SECTIONS.length)}`);
  if (missed.length > 0) console.log(`failing targets missed: ${missed.join(', ')}`);
  return missed.length > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
