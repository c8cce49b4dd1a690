// `npm run bench`: every benchmark, each printed as ratios against a baseline measured in the same process.
import { benchPerPacket, printPerPacket } from './xdp-per-packet.js';
import { requireRoot } from '../fixtures/privileges.js';

requireRoot('the XDP benchmark');
const perPacketOk = printPerPacket(benchPerPacket(), 5);
process.exitCode = perPacketOk ? 0 : 1;
