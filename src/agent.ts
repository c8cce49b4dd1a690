// The long-running agent: keeps carnx attached to every selected interface, reads the counters, and hands them to metrics.
import type { Libbpf } from './bpf/libbpf.js';
import type { InterfaceCounters } from './bpf/counter-layout.js';
import { BpfError } from './bpf/bpf-error.js';
import type { CarnxConfig } from './config/schema.js';
import { otlpUsesTls, resolveXdpObject } from './config/load-config.js';
import { ExitCode, FatalError } from './cli/exit-codes.js';
import { ConfigError } from './config/config-error.js';
import type { Logger } from './log/logger.js';
import type { ExportState } from './metrics/otlp-exporter.js';
import { AttachRefused, XdpAttacher, removePins, type OwnedAttachment } from './attach/xdp-attacher.js';
import { pinnedInterfaces, removeEmptyPinDirs, sweepOtherLayouts } from './attach/pin-sweeper.js';
import { listInterfaces, type NetInterface } from './interfaces/interface-list.js';
import { interfaceFilter } from './interfaces/interface-selector.js';
import { readSnapshots } from './reader/counter-reader.js';
import type { AttachMode, InterfaceSnapshot } from './reader/interface-snapshot.js';
import { HealthServer } from './health/health-server.js';
import { checkCaFile, seccompMode } from './host/preflight.js';

/** What the agent needs from the metrics side; the pipeline implements it. */
export interface MetricsController {
  start(): void;
  /** One last collection and export, bounded by timeoutMs, then shutdown. */
  stop(timeoutMs: number): Promise<void>;
  recordAttachFailure(reason: string): void;
  /** pending before the first export's outcome, failing from a failed export until the next success, else exporting. */
  exportState(): ExportState;
}

export interface AgentDeps {
  lib: Libbpf;
  logger: Logger;
  /**
   * Builds the metrics side without starting it; on reload `previous` is the running one, stopped only after this
   * returns. Throws an Error naming the config key when the export settings are unusable (TLS files, headers).
   */
  createMetrics: (agent: Agent, config: CarnxConfig, previous?: MetricsController) => MetricsController;
}

export class Agent {
  #config: CarnxConfig;
  readonly #lib: Libbpf;
  readonly #log: Logger;
  readonly #deps: AgentDeps;
  #attacher: XdpAttacher;
  readonly #attached = new Map<string, OwnedAttachment>();
  /** Why an interface is not attached, so each state change is logged once, not at every rescan. */
  readonly #refused = new Map<string, string>();
  #metrics: MetricsController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #health: HealthServer | undefined;
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(config: CarnxConfig, deps: AgentDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#lib = deps.lib;
    this.#log = deps.logger.child({ module: 'agent' });
    this.#attacher = this.#newAttacher(config);
  }

  #newAttacher(config: CarnxConfig): XdpAttacher {
    return new XdpAttacher({
      lib: this.#lib,
      objectPath: resolveXdpObject(config),
      bpffs: config.bpffs.path,
      mode: config.xdp.mode,
      replaceForeign: config.xdp.replaceForeign,
      logger: this.#deps.logger.child({ module: 'attach' }),
    });
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    this.#loadObjectOnce();
    sweepOtherLayouts(this.#config.bpffs.path, this.#log);
    const selected = this.#selectedInterfaces();
    if (selected.length === 0) {
      const present = listInterfaces()
        .map((i) => i.name)
        .join(', ');
      throw new FatalError(
        ExitCode.noInterface,
        `no interface matches interfaces.include minus interfaces.exclude (present: ${present})`,
      );
    }
    // Metrics first, so attach failures at start-up are counted too.
    this.#metrics = this.#buildMetrics(this.#config);
    this.reconcile();
    this.#metrics.start();
    this.#scheduleRescan();
    this.#state = 'running';
    if (this.#config.health.listen !== '') {
      this.#health = new HealthServer(this.#config.health.listen, {
        live: () => this.#state === 'running',
        ready: () => this.#readiness(),
      });
      const port = await this.#health.start();
      this.#log.info({ listen: this.#config.health.listen, port }, 'serving /livez and /readyz');
    }
    this.#log.info({ interfaces: [...this.#attached.keys()], refused: Object.fromEntries(this.#refused) }, 'started');
  }

  /** Unusable TLS files or headers are configuration errors: exit 2 with one line (not an internal error), or a refused reload. */
  #buildMetrics(config: CarnxConfig, previous?: MetricsController): MetricsController {
    try {
      if (otlpUsesTls(config) && config.otlp.tls.ca !== '') checkCaFile(config.otlp.tls.ca);
      return this.#deps.createMetrics(this, config, previous);
    } catch (err) {
      throw new ConfigError([(err as Error).message]);
    }
  }

  /** A verifier rejection or a corrupt object must stop start-up before anything is attached. */
  #loadObjectOnce(): void {
    try {
      this.#attacher.ourProgramTag();
    } catch (err) {
      const detail = err instanceof BpfError ? err.logTail.filter((l) => l.trim() !== '').slice(-15) : [];
      // The capabilities were checked before this, so EPERM under a seccomp filter is almost always the container
      // runtime's default profile refusing bpf(2) (podman and CRI-O before their profile allowed it with CAP_BPF);
      // libbpf's own hint (RLIMIT_MEMLOCK, CONFIG_BPF_SYSCALL) points the wrong way there.
      const seccomp =
        err instanceof BpfError && err.code === 'EPERM' && seccompMode() === 2
          ? "; a seccomp filter is active: the container runtime's profile must allow bpf(2) with CAP_BPF (config/README.md: Containers and seccomp)"
          : '';
      throw new FatalError(
        ExitCode.bpfObject,
        `could not load xdp.object ${resolveXdpObject(this.#config)}: ${(err as Error).message}${seccomp}`,
        detail,
      );
    }
  }

  #selectedInterfaces(): NetInterface[] {
    const wanted = interfaceFilter(this.#config.interfaces.include, this.#config.interfaces.exclude);
    return listInterfaces().filter((i) => wanted(i.name));
  }

  #scheduleRescan(): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.reconcile(), this.#config.interfaces.rescanIntervalMs);
    this.#timer.unref();
  }

  /** Attach to selected interfaces that lack carnx; release those gone, re-created or no longer selected. */
  reconcile(): void {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    let selected: NetInterface[];
    try {
      selected = this.#selectedInterfaces();
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not list interfaces');
      return;
    }
    const byName = new Map(selected.map((i) => [i.name, i]));
    for (const [name, a] of this.#attached) {
      const now = byName.get(name);
      if (now?.ifindex === a.ifindex) continue;
      this.#release(a, false);
      this.#log.info(
        { interface: name },
        now ? 'interface re-created: attaching anew' : 'interface gone or deselected: detached',
      );
    }
    // Pins of interfaces that are gone or deselected (left by a crash or an older config) go too.
    for (const pins of pinnedInterfaces(this.#config.bpffs.path)) {
      const name = pins.dir.slice(pins.dir.lastIndexOf('/') + 1);
      if (!byName.has(name) && !this.#attached.has(name)) removePins(pins);
    }
    for (const name of this.#refused.keys()) if (!byName.has(name)) this.#refused.delete(name);
    for (const iface of selected) if (!this.#attached.has(iface.name)) this.#attach(iface);
  }

  #attach(iface: NetInterface): void {
    try {
      this.#attached.set(iface.name, this.#attacher.ensure(iface));
      if (this.#refused.delete(iface.name)) this.#log.info({ interface: iface.name }, 'interface now attached');
    } catch (err) {
      const reason = err instanceof AttachRefused ? err.reason : 'attach-error';
      const message = (err as Error).message;
      if (this.#refused.get(iface.name) !== message) {
        this.#refused.set(iface.name, message);
        this.#log.warn(
          { interface: iface.name, reason, foreignProgId: (err as AttachRefused).foreignProgId, err: message },
          'not counting on interface',
        );
        this.#metrics?.recordAttachFailure(reason);
      }
    }
  }

  #release(a: OwnedAttachment, keepPinned: boolean): void {
    try {
      this.#attacher.release(a, keepPinned);
    } catch (err) {
      this.#log.warn({ interface: a.ifname, err: (err as Error).message }, 'could not release attachment');
    }
    this.#attached.delete(a.ifname);
  }

  #readiness(): { ready: boolean; reason: string } {
    if (this.#state !== 'running') return { ready: false, reason: `agent is ${this.#state}` };
    if (this.#attached.size === 0) return { ready: false, reason: 'attached to no interface' };
    const exports = this.#metrics?.exportState() ?? 'pending';
    if (exports === 'pending') return { ready: false, reason: 'no export has completed yet' };
    if (exports === 'failing') return { ready: false, reason: 'exports are failing' };
    return { ready: true, reason: `counting on ${this.#attached.size} interface(s), exporting` };
  }

  /** One read per attached interface: the metrics pipeline calls this once per collection. */
  snapshots(): InterfaceSnapshot[] {
    return readSnapshots(this.#lib, this.#attached.values(), this.#log);
  }

  /** Delta temporality: pins what a successful export carried, so a restart neither loses nor resends counts. */
  saveDeltaExported(ifname: string, counters: InterfaceCounters, untilUnixNs: bigint): void {
    const attachment = this.#attached.get(ifname);
    if (attachment) this.#attacher.saveDeltaExported(attachment, counters, untilUnixNs);
  }

  attachedByMode(): Record<AttachMode, number> {
    const counts: Record<AttachMode, number> = { native: 0, generic: 0, offload: 0 };
    for (const a of this.#attached.values()) counts[a.mode]++;
    return counts;
  }

  attachedInterfaces(): string[] {
    return [...this.#attached.keys()];
  }

  /**
   * SIGHUP: new selection, log level, rescan interval, and export settings. Counts live in the kernel and are not
   * touched; a changed export side is rebuilt (its last export first). xdp.mode and xdp.object apply to interfaces
   * attached from now on.
   */
  async reload(config: CarnxConfig): Promise<void> {
    if (this.#state !== 'running') return;
    const exportChanged =
      JSON.stringify([config.export, config.otlp, config.resource]) !==
      JSON.stringify([this.#config.export, this.#config.otlp, this.#config.resource]);
    // Build the new export side before changing anything: if it cannot be built, the running one keeps exporting.
    let next: MetricsController | undefined;
    if (exportChanged && this.#metrics) {
      try {
        next = this.#buildMetrics(config, this.#metrics);
      } catch (err) {
        this.#log.error(
          { problems: (err as ConfigError).problems },
          'reload refused: keeping the running configuration',
        );
        return;
      }
    }
    this.#config = config;
    this.#deps.logger.level = config.log.level;
    this.#attacher = this.#newAttacher(config);
    this.#scheduleRescan();
    if (next && this.#metrics) {
      await this.#metrics.stop(config.export.shutdownTimeoutMs);
      this.#metrics = next;
      this.#metrics.start();
    }
    this.reconcile();
    this.#log.info({ interfaces: [...this.#attached.keys()], exportChanged }, 'configuration reloaded');
  }

  /** Last export, then detach and unpin (or keep pins with xdp.keepAttachedOnExit). A second call is a no-op. */
  async stop(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#state = 'stopping';
    clearInterval(this.#timer);
    await this.#health?.stop();
    try {
      await this.#metrics?.stop(this.#config.export.shutdownTimeoutMs);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'last export failed');
    }
    const keep = this.#config.xdp.keepAttachedOnExit;
    for (const a of [...this.#attached.values()]) this.#release(a, keep);
    if (!keep) removeEmptyPinDirs(this.#config.bpffs.path);
    this.#state = 'stopped';
    this.#log.info({ keptAttached: keep }, 'stopped');
  }
}
