// The live-traffic bench's generator: live-gen.bpf.c run by BPF_PROG_TEST_RUN in live-frames mode, sending from a veth.
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BpfObject, libbpf, testRunLive } from '../../src/bpf/libbpf.js';
import { command } from '../fixtures/command.js';

const SOURCE = fileURLToPath(new URL('../../../test/bench/live-gen.bpf.c', import.meta.url));
/** Built beside this module in dist/ (xdp/build.sh builds only carnx's own programs). */
const OBJECT = fileURLToPath(new URL('./live-gen.bpf.o', import.meta.url));

/** Compiles the generator when its object is missing or older than its source, with xdp/build.sh's flags. */
function buildObject(): string {
  if (existsSync(OBJECT) && statSync(OBJECT).mtimeMs >= statSync(SOURCE).mtimeMs) return OBJECT;
  const archInclude = `/usr/include/${command('uname', ['-m']).trim()}-linux-gnu`;
  command('clang', ['-O2', '-g', '-Wall', '-Werror', '-target', 'bpf', `-I${archInclude}`, '-c', SOURCE, '-o', OBJECT]);
  return OBJECT;
}

/** The loaded generator. Sending runs on the calling thread and CPU; close() when done. */
export class LiveGenerator {
  readonly #object: BpfObject;
  readonly #fd: number;

  constructor() {
    this.#object = libbpf().openObject(buildObject());
    try {
      this.#object.load();
      this.#fd = this.#object.programFd('live_gen');
    } catch (err) {
      this.#object.close();
      throw err;
    }
  }

  /**
   * Transmits `frame` `count` times from the veth `ifindex` (its peer receives them) and returns the wall time in
   * seconds. The receiving side's NAPI poll runs on this CPU as each batch is flushed, so the time covers sending
   * and receiving alike: a slower receive path shows as fewer packets per second.
   */
  send(ifindex: number, frame: Buffer, count: number): number {
    const start = process.hrtime.bigint();
    testRunLive(libbpf(), this.#fd, frame, ifindex, count);
    return Number(process.hrtime.bigint() - start) / 1e9;
  }

  close(): void {
    this.#object.close();
  }
}
