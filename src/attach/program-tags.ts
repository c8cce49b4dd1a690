// The tag of each program in carnx's object file, learned by loading it once: how a pinned program is known as current.
import type { Libbpf } from '../bpf/libbpf.js';

/**
 * One per object file and configuration: the attachers of both directions share it, so a program both use (TC) is
 * verified once. A reload makes a new one, so a rebuilt object at the same path is loaded and its new tag learned.
 */
export class ProgramTags {
  readonly #lib: Libbpf;
  readonly #objectPath: string;
  readonly #tags = new Map<string, Promise<string>>();

  constructor(lib: Libbpf, objectPath: string) {
    this.#lib = lib;
    this.#objectPath = objectPath;
  }

  get objectPath(): string {
    return this.#objectPath;
  }

  /** Loads the program (once; callers asking meanwhile share that load) and resolves to its tag. */
  of(program: string): Promise<string> {
    let tag = this.#tags.get(program);
    if (tag === undefined) {
      tag = this.#learn(program);
      this.#tags.set(program, tag);
      // A failed load is not remembered: the next caller tries again (and gets the error with its log tail).
      tag.catch(() => this.#tags.delete(program));
    }
    return tag;
  }

  async #learn(program: string): Promise<string> {
    try {
      return await this.#load(program, (object) => object.loadAsync());
    } catch {
      // Loaded on a worker thread, a rejection has no verifier log: load once more here, where libbpf's log is kept,
      // so the error names the rejected instruction. Only a failure pays for this second load.
      return this.#load(program, (object) => object.load());
    }
  }

  async #load(
    program: string,
    load: (object: ReturnType<Libbpf['openObject']>) => void | Promise<void>,
  ): Promise<string> {
    const object = this.#lib.openObject(this.#objectPath);
    try {
      object.loadOnly([program]);
      await load(object);
      return this.#lib.progInfo(object.programFd(program), this.#objectPath).tag;
    } finally {
      object.close();
    }
  }
}
