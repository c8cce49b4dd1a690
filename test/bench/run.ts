// `npm run bench`: every benchmark, each printed as ratios against a baseline measured in the same process.
import { requireRoot } from '../fixtures/privileges.js';
import { HOOKS, benchPerPacket, printPerPacket } from './per-packet.js';
import { machineAtStart, writeResults } from './results.js';
import { benchThroughput, printThroughput } from './tcp-throughput.js';

/** XDP's per-packet target fails the bench; the TC rows and the throughput target are reported only. */
const PER_PACKET_TARGET_NS = 5;

requireRoot('the benchmarks');
const machine = machineAtStart();
console.log(`machine: ${machine.nproc} CPUs (${machine.cpu}), kernel ${machine.kernel}, load ${machine.loadavg.start}`);
const perPacket = HOOKS.map((hook) => benchPerPacket(hook, PER_PACKET_TARGET_NS));
let ok = true;
for (const result of perPacket) ok = printPerPacket(result) && ok;
const throughput = await benchThroughput();
printThroughput(throughput);
console.log(`\nresults: ${writeResults(machine, { perPacket, throughput })}`);
process.exitCode = ok ? 0 : 1;
