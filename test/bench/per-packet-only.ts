// `node dist/test/bench/per-packet-only.js [other.bpf.o ...]`: the per-packet rows alone, without the long throughput
// part, for iterating on the BPF programs. Each object given (e.g. main's build) runs its carnx program beside carnx's
// and the bare one, interleaved run by run, so old and new are compared under the same machine state.
// CARNX_BENCH_HOOK=tc compares the tc programs.
// CARNX_BENCH_REPEAT and CARNX_BENCH_RUNS shorten or lengthen the runs.
import { basename } from 'node:path';
import { libbpf } from '../../src/bpf/libbpf.js';
import { requireRoot } from '../fixtures/privileges.js';
import { BENCH_FRAMES, REPEAT, RUNS, TARGETED } from './per-packet.js';
import { BenchProgram, PROGRAMS, type ProgramRef } from './programs.js';

requireRoot('the benchmarks');
const repeat = Number(process.env.CARNX_BENCH_REPEAT ?? REPEAT);
const runs = Number(process.env.CARNX_BENCH_RUNS ?? RUNS);
const tc = process.env.CARNX_BENCH_HOOK === 'tc';
const refs: ProgramRef[] = tc ? [PROGRAMS.bareTc, PROGRAMS.carnxTc] : [PROGRAMS.bareXdp, PROGRAMS.carnxXdp];
for (const object of process.argv.slice(2)) {
  refs.push({ label: basename(object), object, program: tc ? 'carnx_count_tc' : 'carnx_count' });
}

const programs = refs.map((r) => new BenchProgram(r));
try {
  console.log(`repeat ${repeat}, ${runs} runs, min ns (overhead over ${refs[0]!.label})`);
  console.log(`${'frame'.padEnd(28)} ${refs.map((r) => r.label.padEnd(16)).join(' ')}`);
  for (const frame of BENCH_FRAMES) {
    const mins = programs.map(() => Number.POSITIVE_INFINITY);
    for (let i = 0; i < runs; i++) {
      programs.forEach((p, j) => {
        mins[j] = Math.min(mins[j]!, libbpf().testRun(p.fd, frame.bytes, repeat).durationNs);
      });
    }
    const cells = mins.map((m, j) => (j === 0 ? `${m}` : `${m} (+${m - mins[0]!})`).padEnd(16));
    console.log(`${`${frame.name}${TARGETED.has(frame.name) ? '' : ' (info)'}`.padEnd(28)} ${cells.join(' ')}`);
  }
} finally {
  for (const p of programs) p.close();
}
