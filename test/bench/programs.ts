// The programs the benchmarks compare: carnx's two hooks and a bare program for each, loaded one at a time.
import { fileURLToPath } from 'node:url';
import { COUNTERS_SIZE, decodeCounters, sum } from '../../src/bpf/counter-layout.js';
import { type BpfObject, libbpf } from '../../src/bpf/libbpf.js';

const object = (name: string): string => fileURLToPath(new URL(`../../../xdp/${name}`, import.meta.url));

export interface ProgramRef {
  /** How the tables name it. */
  label: string;
  object: string;
  program: string;
}

export const PROGRAMS = {
  carnxXdp: { label: 'carnx XDP', object: object('carnx.bpf.o'), program: 'carnx_count' },
  carnxTc: { label: 'carnx TC', object: object('carnx.bpf.o'), program: 'carnx_count_tc' },
  bareXdp: { label: 'bare XDP_PASS', object: object('pass.bpf.o'), program: 'xdp_pass' },
  bareTc: { label: 'bare TCX_NEXT', object: object('pass_tc.bpf.o'), program: 'tc_pass' },
} as const satisfies Record<string, ProgramRef>;

/** One program of an object in the kernel (loadOnly: the object's other programs stay out). Close it when done. */
export class BenchProgram {
  readonly ref: ProgramRef;
  readonly fd: number;
  readonly #object: BpfObject;

  constructor(ref: ProgramRef) {
    this.ref = ref;
    this.#object = libbpf().openObject(ref.object);
    try {
      this.#object.loadOnly([ref.program]);
      this.#object.load();
      this.fd = this.#object.programFd(ref.program);
    } catch (err) {
      this.#object.close();
      throw err;
    }
  }

  /** Packets carnx's counters hold so far (every CPU, every class); null for a program without them. */
  countedPackets(): bigint | null {
    if (!this.ref.program.startsWith('carnx_')) return null;
    const fd = this.#object.mapFd('carnx_counters');
    return sum(decodeCounters(libbpf().lookupPerCpuU64Sums(fd, 0, COUNTERS_SIZE, this.ref.label)).packets);
  }

  close(): void {
    this.#object.close();
  }
}
