// The one module that talks to libbpf.so.1 through koffi: libbpf's conventions become typed calls and BpfErrors.
import { readlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import koffi from 'koffi';
import { PerCpuSummer } from './per-cpu-sum.js';
import { BpfError } from './bpf-error.js';

/** libbpf's print levels. */
export type LibbpfLogLevel = 'warn' | 'info' | 'debug';
export type LibbpfLogSink = (level: LibbpfLogLevel, message: string) => void;

/** What `bpf_xdp_query` reports for one interface. Ids are 0 when nothing is attached. */
export interface XdpQueryResult {
  /** The program attached in the reported mode (any mode), 0 for none. */
  progId: number;
  drvProgId: number;
  skbProgId: number;
  hwProgId: number;
  attachMode: 'none' | 'native' | 'generic' | 'offload' | 'multi';
}

export interface TestRunResult {
  retval: number;
  /** Average nanoseconds per repetition, as the kernel measured it. */
  durationNs: number;
  dataOut: Buffer;
}

export interface ProgInfo {
  id: number;
  tag: string;
  name: string;
}

/** What a map fd is: enough to tell whether a pinned map has the shape carnx would create. */
export interface MapInfo {
  /** enum bpf_map_type: 2 array, 6 per-CPU array. */
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** enum bpf_map_type values carnx creates. */
export const MAP_TYPES = { array: 2, percpuArray: 6 } as const;

export interface LinkInfo {
  id: number;
  progId: number;
  /** For an XDP link: its interface, 0 once the interface is gone (a defunct link). */
  ifindex: number;
}

const BPF_XDP_ATTACH_TYPE = 37; // enum bpf_attach_type BPF_XDP
/** enum bpf_attach_type BPF_TCX_INGRESS / BPF_TCX_EGRESS (kernel >= 6.6; libbpf 1.1 passes them through unchanged). */
export const TCX_ATTACH_TYPES = { ingress: 46, egress: 47 } as const;
export type TcxDirection = keyof typeof TCX_ATTACH_TYPES;
/** Where a tcx link goes in the hook's program list: before every other program, or after them. */
const BPF_F_BEFORE = 1 << 3;
const BPF_F_AFTER = 1 << 4;
/** Where a link goes: XDP with its mode flags, or a tcx hook, first or last in its list. */
export type LinkHook =
  | { kind: 'xdp'; flags: number }
  | { kind: 'tcx'; direction: TcxDirection; place: 'before' | 'after' };

/** bpf_link_create_opts with only flags set. */
function linkOpts(flags: number) {
  return {
    sz: koffi.sizeof('bpf_link_create_opts'),
    flags,
    iter_info: 0n,
    iter_info_len: 0,
    target_btf_id: 0,
    union_space: [0n, 0n, 0n, 0n],
  };
}
const ATTACH_MODES: XdpQueryResult['attachMode'][] = ['none', 'native', 'generic', 'offload', 'multi'];
const LOG_LEVELS: LibbpfLogLevel[] = ['warn', 'info', 'debug'];
const LOG_TAIL_LINES = 40;
/** libbpf hands a failed load's verifier log to print in one call; its tail names the rejected instruction. */
const PRINT_BUFFER_BYTES = 1 << 20;

// Opaque handles stay inside this module: callers see BpfObject methods, never pointers.
const bpfObjectType = koffi.opaque('bpf_object');
const bpfProgramType = koffi.opaque('bpf_program');
const bpfMapType = koffi.opaque('bpf_map');
void bpfObjectType;
void bpfProgramType;
void bpfMapType;

// Option structs begin with their own size; layouts match libbpf 1.1.2 built by gcc.
koffi.struct('bpf_xdp_query_opts', {
  sz: 'size_t',
  prog_id: 'uint32_t',
  drv_prog_id: 'uint32_t',
  hw_prog_id: 'uint32_t',
  skb_prog_id: 'uint32_t',
  attach_mode: 'uint8_t',
});
koffi.struct('bpf_xdp_attach_opts', { sz: 'size_t', old_prog_fd: 'int' });
koffi.struct('bpf_link_create_opts', {
  sz: 'size_t',
  flags: 'uint32_t',
  iter_info: 'uint64_t',
  iter_info_len: 'uint32_t',
  target_btf_id: 'uint32_t',
  union_space: koffi.array('uint64_t', 4), // the largest union member, kprobe_multi
});
koffi.struct('bpf_link_update_opts', { sz: 'size_t', flags: 'uint32_t', old_prog_fd: 'uint32_t' });
// Pointer members are addresses (koffi.address of a live Buffer) so libbpf writes into our Buffers.
koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'uint64_t',
  data_out: 'uint64_t',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'uint64_t',
  ctx_out: 'uint64_t',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});
type KoffiLib = ReturnType<typeof koffi.load>;
const printFnType = koffi.proto('int libbpf_print_fn(int level, const char *fmt, void *ap)');

function declare(lib: KoffiLib) {
  const libc = koffi.load('libc.so.6');
  return {
    open: lib.func('bpf_object *bpf_object__open_file(const char *path, void *opts)'),
    load: lib.func('int bpf_object__load(bpf_object *obj)'),
    close: lib.func('void bpf_object__close(bpf_object *obj)'),
    findProgram: lib.func('bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
    nextProgram: lib.func('bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)'),
    programName: lib.func('const char *bpf_program__name(bpf_program *prog)'),
    findMap: lib.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
    programFd: lib.func('int bpf_program__fd(bpf_program *prog)'),
    mapFd: lib.func('int bpf_map__fd(bpf_map *map)'),
    mapValueSize: lib.func('uint32_t bpf_map__value_size(bpf_map *map)'),
    mapReuseFd: lib.func('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
    linkCreate: lib.func('int bpf_link_create(int prog_fd, int target_fd, int type, const bpf_link_create_opts *opts)'),
    setAutoload: lib.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
    progQuery: lib.func(
      'int bpf_prog_query(int target_fd, int type, uint32_t query_flags, _Out_ uint32_t *attach_flags, void *prog_ids, _Inout_ uint32_t *prog_cnt)',
    ),
    linkUpdate: lib.func('int bpf_link_update(int link_fd, int new_prog_fd, const bpf_link_update_opts *opts)'),
    linkDetach: lib.func('int bpf_link_detach(int link_fd)'),
    xdpAttach: lib.func(
      'int bpf_xdp_attach(int ifindex, int prog_fd, uint32_t flags, const bpf_xdp_attach_opts *opts)',
    ),
    xdpDetach: lib.func('int bpf_xdp_detach(int ifindex, uint32_t flags, const bpf_xdp_attach_opts *opts)'),
    xdpQuery: lib.func('int bpf_xdp_query(int ifindex, int flags, _Inout_ bpf_xdp_query_opts *opts)'),
    objPin: lib.func('int bpf_obj_pin(int fd, const char *path)'),
    objGet: lib.func('int bpf_obj_get(const char *path)'),
    objGetInfo: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)'),
    progFdById: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    linkFdById: lib.func('int bpf_link_get_fd_by_id(uint32_t id)'),
    lookup: lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    update: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    testRun: lib.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)'),
    possibleCpus: lib.func('int libbpf_num_possible_cpus(void)'),
    setPrint: lib.func('void *libbpf_set_print(libbpf_print_fn *fn)'),
    vsnprintf: libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *ap)'),
    closeFd: libc.func('int close(int fd)'),
    flock: libc.func('int flock(int fd, int operation)'),
  };
}
type Calls = ReturnType<typeof declare>;

/** A libbpf object file, opened and (after load()) in the kernel. Close it when done. */
export class BpfObject {
  #lib: Libbpf;
  #ptr: unknown;
  /** A worker thread is inside bpf_object__load: freeing the object now would pull it from under that thread. */
  #loading = false;
  readonly path: string;

  constructor(lib: Libbpf, ptr: unknown, path: string) {
    this.#lib = lib;
    this.#ptr = ptr;
    this.path = path;
  }

  #handle(): unknown {
    if (this.#ptr === null) throw new Error(`BPF object ${this.path} is already closed`);
    return this.#ptr;
  }

  #map(name: string): unknown {
    const map = this.#lib.calls.findMap(this.#handle(), name);
    if (map === null) throw new Error(`BPF object ${this.path} has no map named ${name}`);
    return map;
  }

  /** Before load(): use an existing map (a pinned one) instead of creating this one. */
  reuseMap(name: string, fd: number): void {
    this.#lib.check(
      'bpf_map__reuse_fd',
      this.#lib.calls.mapReuseFd(this.#map(name), fd),
      `map ${name} of ${this.path}`,
    );
  }

  /** Loads programs and maps into the kernel; a verifier rejection carries the log's tail. */
  load(): void {
    const { result, log } = this.#lib.capturingLog(() => this.#lib.calls.load(this.#handle()));
    if (result < 0) throw new BpfError('bpf_object__load', result, this.path, log);
  }

  /**
   * load() on one of koffi's worker threads (libuv's pool), so several objects are verified at once (the verifier
   * runs in the calling thread; separate objects share nothing). libbpf prints nothing meanwhile (see
   * Libbpf.workerCall), so a rejection carries only its errno: load() first (the start-up check) names the rejected
   * instruction.
   */
  async loadAsync(): Promise<void> {
    const handle = this.#handle();
    this.#loading = true;
    try {
      const result = await this.#lib.workerCall(
        () =>
          new Promise<number>((resolve, reject) => {
            this.#lib.calls.load.async(handle, (err: unknown, res: number) => (err ? reject(err) : resolve(res)));
          }),
      );
      if (result < 0) throw new BpfError('bpf_object__load', result, this.path);
    } finally {
      this.#loading = false;
    }
  }

  /** Before load(): load only these programs (the others in the object are skipped, verifier time included). */
  loadOnly(names: readonly string[]): void {
    for (const name of names) this.#program(name);
    let prog: unknown = null;
    for (;;) {
      prog = this.#lib.calls.nextProgram(this.#handle(), prog);
      if (prog === null) return;
      const name = this.#lib.calls.programName(prog);
      this.#lib.check('bpf_program__set_autoload', this.#lib.calls.setAutoload(prog, names.includes(name)), `${name}`);
    }
  }

  #program(name: string): unknown {
    const prog = this.#lib.calls.findProgram(this.#handle(), name);
    if (prog === null) throw new Error(`BPF object ${this.path} has no program named ${name}`);
    return prog;
  }

  programFd(name: string): number {
    const prog = this.#program(name);
    return this.#lib.check('bpf_program__fd', this.#lib.calls.programFd(prog), `program ${name} of ${this.path}`);
  }

  mapFd(name: string): number {
    return this.#lib.check('bpf_map__fd', this.#lib.calls.mapFd(this.#map(name)), `map ${name} of ${this.path}`);
  }

  mapValueSize(name: string): number {
    return this.#lib.calls.mapValueSize(this.#map(name));
  }

  /** Frees the object; its kernel programs and maps live on while pins, links or fds hold them. */
  close(): void {
    if (this.#ptr === null) return;
    if (this.#loading) throw new Error(`BPF object ${this.path} is still loading: await loadAsync() before close()`);
    this.#lib.calls.close(this.#ptr);
    this.#ptr = null;
  }
}

export class Libbpf {
  readonly calls: Calls;
  #sink: LibbpfLogSink | undefined;
  #capture: string[] | undefined;
  #printCallback: unknown;
  /** libbpf calls running on worker threads now; while there are any, libbpf's print function is unset. */
  #workerCalls = 0;
  #possibleCpus: number | undefined;
  #printBuffer: Buffer | undefined;

  constructor(path = 'libbpf.so.1') {
    let lib: KoffiLib;
    try {
      lib = koffi.load(path);
    } catch (err) {
      throw new Error(`could not load ${path} (install libbpf1): ${(err as Error).message}`);
    }
    this.calls = declare(lib);
    this.#printCallback = koffi.register(
      (level: number, fmt: string, ap: unknown) => this.#print(level, fmt, ap),
      koffi.pointer(printFnType),
    );
    this.calls.setPrint(this.#printCallback);
  }

  /** Where libbpf's own messages go (they are dropped until a sink is set). */
  setLogSink(sink: LibbpfLogSink | undefined): void {
    this.#sink = sink;
  }

  #print(level: number, fmt: string, ap: unknown): number {
    // ap is consumed by one vsnprintf: format once, into a buffer large enough for a whole verifier log.
    this.#printBuffer ??= Buffer.alloc(PRINT_BUFFER_BYTES);
    const buf = this.#printBuffer;
    const n = this.calls.vsnprintf(buf, buf.length, fmt, ap);
    const text = buf
      .subarray(0, Math.max(0, Math.min(n, buf.length - 1)))
      .toString('utf8')
      .trimEnd();
    if (this.#capture) {
      this.#capture.push(...text.split('\n'));
      if (this.#capture.length > LOG_TAIL_LINES) this.#capture.splice(0, this.#capture.length - LOG_TAIL_LINES);
    }
    this.#sink?.(LOG_LEVELS[level] ?? 'debug', text);
    return n;
  }

  /**
   * Runs fn while keeping the tail of what libbpf logs meanwhile. While worker calls run, printing is switched on for
   * fn only: a worker that prints in that window waits for this thread (koffi relays the call), which is free again
   * once fn returns.
   */
  capturingLog<T>(fn: () => T): { result: T; log: string[] } {
    const log: string[] = [];
    this.#capture = log;
    if (this.#workerCalls > 0) this.calls.setPrint(this.#printCallback);
    try {
      return { result: fn(), log };
    } finally {
      if (this.#workerCalls > 0) this.calls.setPrint(null);
      this.#capture = undefined;
    }
  }

  /**
   * Runs an async (worker thread) libbpf call with libbpf's print function unset. A print from a worker would be
   * relayed to this thread by koffi, the worker blocked until it runs: at process exit (a failed start-up, a forced
   * second signal) libuv joins its pool threads, and a worker still waiting for a relay would hang the exit. libbpf
   * reads the function pointer on each print; it is set back once no worker call is left.
   */
  async workerCall<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#workerCalls++ === 0) this.calls.setPrint(null);
    try {
      return await fn();
    } finally {
      if (--this.#workerCalls === 0) this.calls.setPrint(this.#printCallback);
    }
  }

  /** Turns libbpf's negative-errno convention into a BpfError; returns the non-negative result. */
  check(call: string, result: number, context: string): number {
    if (result < 0) throw new BpfError(call, result, context);
    return result;
  }

  openObject(path: string): BpfObject {
    // NULL + errno convention: read errno right after the call, synchronously.
    const ptr = this.calls.open(path, null);
    if (ptr === null) throw new BpfError('bpf_object__open_file', koffi.errno(), path);
    return new BpfObject(this, ptr, path);
  }

  /** Attaches prog to ifindex as a bpf_link with XDP mode flags; returns the link fd. */
  linkCreateXdp(progFd: number, ifindex: number, flags: number, context: string): number {
    return this.check(
      'bpf_link_create',
      this.calls.linkCreate(progFd, ifindex, BPF_XDP_ATTACH_TYPE, linkOpts(flags)),
      context,
    );
  }

  /**
   * Attaches prog to ifindex's tcx hook as a bpf_link: first in the hook's list (`before`) or last (`after`).
   * Other programs on the hook keep their order and keep running. Returns the link fd.
   */
  linkCreateTcx(
    progFd: number,
    ifindex: number,
    direction: TcxDirection,
    place: 'before' | 'after',
    context: string,
  ): number {
    const opts = linkOpts(place === 'before' ? BPF_F_BEFORE : BPF_F_AFTER);
    return this.check(
      'bpf_link_create',
      this.calls.linkCreate(progFd, ifindex, TCX_ATTACH_TYPES[direction], opts),
      context,
    );
  }

  /**
   * linkCreateXdp and linkCreateTcx on a worker thread (libuv's pool). Creating a link can wait in the kernel without
   * using a CPU (a tcx attach waits for an RCU grace period, under the rtnl lock, about 8-16 ms here): meanwhile this
   * thread goes on with other interfaces' loads and links.
   */
  async linkCreateAsync(progFd: number, ifindex: number, hook: LinkHook, context: string): Promise<number> {
    const [type, flags] =
      hook.kind === 'xdp'
        ? [BPF_XDP_ATTACH_TYPE, hook.flags]
        : [TCX_ATTACH_TYPES[hook.direction], hook.place === 'before' ? BPF_F_BEFORE : BPF_F_AFTER];
    const opts = linkOpts(flags);
    const result = await this.workerCall(
      () =>
        new Promise<number>((resolve, reject) => {
          this.calls.linkCreate.async(progFd, ifindex, type, opts, (err: unknown, res: number) =>
            err ? reject(err) : resolve(res),
          );
        }),
    );
    return this.check('bpf_link_create', result, context);
  }

  /** The ids of the programs on ifindex's tcx hook, in run order (at most 64 are listed). */
  tcxQuery(ifindex: number, direction: TcxDirection, context: string): number[] {
    const capacity = 64;
    const ids = Buffer.alloc(capacity * 4);
    const count = [capacity];
    const type = TCX_ATTACH_TYPES[direction];
    this.check('bpf_prog_query', this.calls.progQuery(ifindex, type, 0, [0], ids, count), context);
    const n = Math.min(count[0] ?? 0, capacity);
    return Array.from({ length: n }, (_, i) => ids.readUInt32LE(i * 4));
  }

  /** Swaps the program behind a link atomically; fails if oldProgFd is given and no longer current. */
  linkUpdate(linkFd: number, newProgFd: number, context: string, oldProgFd?: number): void {
    const BPF_F_REPLACE = 4;
    const opts = {
      sz: koffi.sizeof('bpf_link_update_opts'),
      flags: oldProgFd === undefined ? 0 : BPF_F_REPLACE,
      old_prog_fd: oldProgFd ?? 0,
    };
    this.check('bpf_link_update', this.calls.linkUpdate(linkFd, newProgFd, opts), context);
  }

  /**
   * Detaches a link from its hook now (BPF_LINK_DETACH). Unpinning alone detaches only once the kernel frees the pin's
   * inode, after an RCU grace period: an attach right behind it can still find the hook taken.
   */
  linkDetach(linkFd: number, context: string): void {
    this.check('bpf_link_detach', this.calls.linkDetach(linkFd), context);
  }

  /** Netlink attach (outlives the process); carnx itself uses links, tests use this for foreign programs. */
  xdpAttach(ifindex: number, progFd: number, flags: number, context: string): void {
    this.check('bpf_xdp_attach', this.calls.xdpAttach(ifindex, progFd, flags, null), context);
  }

  xdpDetach(ifindex: number, flags: number, context: string): void {
    this.check('bpf_xdp_detach', this.calls.xdpDetach(ifindex, flags, null), context);
  }

  xdpQuery(ifindex: number, context: string): XdpQueryResult {
    const opts = {
      sz: koffi.sizeof('bpf_xdp_query_opts'),
      prog_id: 0,
      drv_prog_id: 0,
      hw_prog_id: 0,
      skb_prog_id: 0,
      attach_mode: 0,
    };
    this.check('bpf_xdp_query', this.calls.xdpQuery(ifindex, 0, opts), context);
    return {
      progId: opts.prog_id,
      drvProgId: opts.drv_prog_id,
      skbProgId: opts.skb_prog_id,
      hwProgId: opts.hw_prog_id,
      attachMode: ATTACH_MODES[opts.attach_mode] ?? 'multi',
    };
  }

  pin(fd: number, path: string): void {
    this.check('bpf_obj_pin', this.calls.objPin(fd, path), path);
  }

  /** Opens a pinned object; returns its fd. */
  getPinned(path: string): number {
    return this.check('bpf_obj_get', this.calls.objGet(path), path);
  }

  progFdById(id: number): number {
    return this.check('bpf_prog_get_fd_by_id', this.calls.progFdById(id), `program id ${id}`);
  }

  linkFdById(id: number): number {
    return this.check('bpf_link_get_fd_by_id', this.calls.linkFdById(id), `link id ${id}`);
  }

  #info(fd: number, size: number, context: string): Buffer {
    const info = Buffer.alloc(size);
    const len = [size];
    this.check('bpf_obj_get_info_by_fd', this.calls.objGetInfo(fd, info, len), context);
    return info;
  }

  progInfo(fd: number, context: string): ProgInfo {
    // struct bpf_prog_info: id @4, tag[8] @8, name[16] @64.
    const info = this.#info(fd, 232, context);
    const name = info.subarray(64, 80);
    return {
      id: info.readUInt32LE(4),
      tag: info.subarray(8, 16).toString('hex'),
      name: name.subarray(0, Math.max(0, name.indexOf(0))).toString(),
    };
  }

  /** The kind of kernel object behind fd ('bpf-map', 'bpf-prog', 'bpf-link'), from its anon inode name. */
  objectKind(fd: number): string {
    // Some kernels spell it 'bpf_link': one spelling above this module.
    return readlinkSync(`/proc/self/fd/${fd}`)
      .replace(/^anon_inode:/, '')
      .replace('bpf_link', 'bpf-link');
  }

  mapInfo(fd: number, context: string): MapInfo {
    if (this.objectKind(fd) !== 'bpf-map') throw new Error(`${context} is not a BPF map`);
    // struct bpf_map_info: type @0, id @4, key_size @8, value_size @12, max_entries @16.
    const info = this.#info(fd, 40, context);
    return {
      type: info.readUInt32LE(0),
      keySize: info.readUInt32LE(8),
      valueSize: info.readUInt32LE(12),
      maxEntries: info.readUInt32LE(16),
    };
  }

  linkInfo(fd: number, context: string): LinkInfo {
    // struct bpf_link_info: id @4, prog_id @8, xdp.ifindex @16.
    const info = this.#info(fd, 48, context);
    return { id: info.readUInt32LE(4), progId: info.readUInt32LE(8), ifindex: info.readUInt32LE(16) };
  }

  /** Copies one map value (key is a u32) into a Buffer of valueSize bytes. */
  lookup(fd: number, key: number, valueSize: number, context: string): Buffer {
    const keyBuf = Buffer.alloc(4);
    keyBuf.writeUInt32LE(key);
    const value = Buffer.alloc(valueSize);
    this.check('bpf_map_lookup_elem', this.calls.lookup(fd, keyBuf, value), context);
    return value;
  }

  update(fd: number, key: number, value: Buffer, context: string): void {
    const keyBuf = Buffer.alloc(4);
    keyBuf.writeUInt32LE(key);
    this.check('bpf_map_update_elem', this.calls.update(fd, keyBuf, value, 0n), context);
  }

  /** CPUs the kernel may ever bring up: the number of slots in a per-CPU value. */
  possibleCpus(): number {
    this.#possibleCpus ??= this.check('libbpf_num_possible_cpus', this.calls.possibleCpus(), 'this host');
    return this.#possibleCpus;
  }

  /**
   * Reads a per-CPU value made only of u64 fields and sums each field over every
   * possible CPU. Per-CPU values are laid out round_up(valueSize, 8) apart.
   */
  lookupPerCpuU64Sums(fd: number, key: number, valueSize: number, context: string): bigint[] {
    const stride = Math.ceil(valueSize / 8) * 8;
    const cpus = this.possibleCpus();
    // The kernel writes the value (~94 KB at 256 CPUs) straight into the summer's memory, where the sum reads it.
    this.perCpuSummer ??= new PerCpuSummer();
    const raw = this.perCpuSummer.buffer(stride * cpus, valueSize / 8);
    const keyBuf = Buffer.alloc(4);
    keyBuf.writeUInt32LE(key);
    this.check('bpf_map_lookup_elem', this.calls.lookup(fd, keyBuf, raw), context);
    return this.perCpuSummer.sum(raw, cpus, stride, valueSize / 8);
  }

  /** Sums lookupPerCpuU64Sums's values (a plain field: the bench's fake Libbpf has no private slots). */
  private perCpuSummer: PerCpuSummer | undefined;

  /** BPF_PROG_TEST_RUN: runs the program on one frame `repeat` times; ctxIn, when given, is the program's context
   * (e.g. a struct __sk_buff with gso_segs and gso_size for a tc program). */
  testRun(progFd: number, frame: Buffer, repeat = 1, ctxIn?: Buffer): TestRunResult {
    const dataOut = Buffer.alloc(frame.length + 256);
    const opts = {
      sz: koffi.sizeof('bpf_test_run_opts'),
      data_in: koffi.address(frame),
      data_out: koffi.address(dataOut),
      data_size_in: frame.length,
      data_size_out: dataOut.length,
      ctx_in: ctxIn ? koffi.address(ctxIn) : 0n,
      ctx_out: 0n,
      ctx_size_in: ctxIn?.length ?? 0,
      ctx_size_out: 0,
      retval: 0,
      repeat,
      duration: 0,
      flags: 0,
      cpu: 0,
      batch_size: 0,
    };
    this.check('bpf_prog_test_run_opts', this.calls.testRun(progFd, opts), `a ${frame.length}-byte frame`);
    return { retval: opts.retval, durationNs: opts.duration, dataOut: dataOut.subarray(0, opts.data_size_out) };
  }

  closeFd(fd: number): void {
    if (fd >= 0) this.calls.closeFd(fd);
  }

  /** flock(2) LOCK_EX|LOCK_NB on an open fd: false when another open file holds it, a BpfError-style Error otherwise. */
  tryLockExclusive(fd: number, context: string): boolean {
    const LOCK_EX = 2;
    const LOCK_NB = 4;
    if (this.calls.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const errno = koffi.errno();
    if (errno === osConstants.errno.EWOULDBLOCK) return false;
    throw new BpfError('flock', errno, context);
  }
}

let shared: Libbpf | undefined;

/** The process-wide binding, loaded on first use (never at import time). */
export function libbpf(): Libbpf {
  shared ??= new Libbpf();
  return shared;
}

// ---- What `carnx check` and `carnx status` read: feature probes, and program and link details by fd. ----

/** enum bpf_prog_type values carnx loads. */
export const PROG_TYPES = { schedCls: 3, xdp: 6 } as const;
/** enum bpf_link_type values of carnx's links. */
export const LINK_TYPES = { xdp: 6, tcx: 11 } as const;

/** What a loaded program is: its identity, and when it was loaded. */
export interface ProgDetails {
  id: number;
  type: number;
  name: string;
  tag: string;
  /** Nanoseconds since boot (CLOCK_BOOTTIME) at load. */
  loadTimeNs: bigint;
  createdByUid: number;
}

/** What a link is: its type, its program and, for XDP and tcx links, its interface and attach type. */
export interface LinkDetails {
  id: number;
  type: number;
  progId: number;
  /** 0 once the interface is gone (a defunct link). */
  ifindex: number;
  /** tcx links only: BPF_TCX_INGRESS (46) or BPF_TCX_EGRESS (47); 0 otherwise. */
  attachType: number;
}

let probeCall: ((progType: number, opts: null) => number) | undefined;

/**
 * Whether the kernel loads a trivial program of this type (libbpf_probe_bpf_prog_type): true, false, or a BpfError
 * (EPERM without CAP_BPF). Declared on first use: only `carnx check` asks.
 */
export function probeProgType(lib: Libbpf, progType: number, context: string): boolean {
  probeCall ??= koffi.load('libbpf.so.1').func('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)');
  return lib.check('libbpf_probe_bpf_prog_type', probeCall(progType, null), context) === 1;
}

function infoByFd(lib: Libbpf, fd: number, size: number, context: string): Buffer {
  const info = Buffer.alloc(size);
  lib.check('bpf_obj_get_info_by_fd', lib.calls.objGetInfo(fd, info, [size]), context);
  return info;
}

export function progDetails(lib: Libbpf, fd: number, context: string): ProgDetails {
  // struct bpf_prog_info: type @0, id @4, tag[8] @8, load_time @40, created_by_uid @48, name[16] @64.
  const info = infoByFd(lib, fd, 232, context);
  const name = info.subarray(64, 80);
  const end = name.indexOf(0);
  return {
    id: info.readUInt32LE(4),
    type: info.readUInt32LE(0),
    name: name.subarray(0, end < 0 ? name.length : end).toString(),
    tag: info.subarray(8, 16).toString('hex'),
    loadTimeNs: info.readBigUInt64LE(40),
    createdByUid: info.readUInt32LE(48),
  };
}

export function linkDetails(lib: Libbpf, fd: number, context: string): LinkDetails {
  // struct bpf_link_info: type @0, id @4, prog_id @8; xdp.ifindex and tcx.ifindex @16, tcx.attach_type @20.
  const info = infoByFd(lib, fd, 48, context);
  const type = info.readUInt32LE(0);
  return {
    id: info.readUInt32LE(4),
    type,
    progId: info.readUInt32LE(8),
    ifindex: type === LINK_TYPES.xdp || type === LINK_TYPES.tcx ? info.readUInt32LE(16) : 0,
    attachType: type === LINK_TYPES.tcx ? info.readUInt32LE(20) : 0,
  };
}

/** A program's details by id (needs CAP_SYS_ADMIN): how a program carnx did not pin is named. */
export function progDetailsById(lib: Libbpf, id: number): ProgDetails {
  const fd = lib.progFdById(id);
  try {
    return progDetails(lib, fd, `program id ${id}`);
  } finally {
    lib.closeFd(fd);
  }
}

/** enum bpf_test_run flags: BPF_F_TEST_XDP_LIVE_FRAMES (kernel >= 5.18). */
const BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1;

/**
 * BPF_PROG_TEST_RUN in live-frames mode (for the benchmarks' generator): the kernel runs an XDP program on `frame`
 * `repeat` times as if it arrived on `ifindex`, and really transmits what the program returns XDP_TX or
 * XDP_REDIRECT for. Returns the kernel's nanoseconds per frame (generation and whatever ran inline with it).
 */
export function testRunLive(lib: Libbpf, progFd: number, frame: Buffer, ifindex: number, repeat: number): number {
  // struct xdp_md: data 0, data_end = the frame's length (the kernel checks), ingress_ifindex at offset 12.
  const ctx = Buffer.alloc(24);
  ctx.writeUInt32LE(frame.length, 4);
  ctx.writeUInt32LE(ifindex, 12);
  const opts = {
    sz: koffi.sizeof('bpf_test_run_opts'),
    data_in: koffi.address(frame),
    data_out: 0n, // live mode refuses data_out and ctx_out
    data_size_in: frame.length,
    data_size_out: 0,
    ctx_in: koffi.address(ctx),
    ctx_out: 0n,
    ctx_size_in: ctx.length,
    ctx_size_out: 0,
    retval: 0,
    repeat,
    duration: 0,
    flags: BPF_F_TEST_XDP_LIVE_FRAMES,
    cpu: 0,
    batch_size: 0, // the kernel's default, NAPI's 64
  };
  lib.check('bpf_prog_test_run_opts', lib.calls.testRun(progFd, opts), `live frames on ifindex ${ifindex}`);
  return opts.duration;
}
