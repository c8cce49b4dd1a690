// `npm run bench`: every benchmark, each printed as ratios against a baseline measured in the same process.
import { requireRoot } from '../fixtures/privileges.js';
import { HOOKS, benchPerPacket, printPerPacket } from './per-packet.js';

/** XDP's per-packet target fails the bench; the TC rows are reported only. */
const PER_PACKET_TARGET_NS = 5;

requireRoot('the benchmarks');
let ok = true;
for (const hook of HOOKS) ok = printPerPacket(benchPerPacket(hook, PER_PACKET_TARGET_NS)) && ok;
process.exitCode = ok ? 0 : 1;
