// The running agent: wires the reconcile loop, the counter reads, metrics and health, and owns their lifecycle.
import { knownHooks, receivePlan, tcxSupported, transmitPlan, type Direction } from './attach/attach-hooks.js';
import { PinnedAttacher } from './attach/pinned-attacher.js';
import { removeEmptyPinDirs, sweepOtherLayouts } from './attach/pin-sweeper.js';
import { ProgramTags } from './attach/program-tags.js';
import { Reconciler } from './attach/reconciler.js';
import { BpfError } from './bpf/bpf-error.js';
import type { Libbpf } from './bpf/libbpf.js';
import { parseHostPort } from './config/formats.js';
import { resolveXdpObject } from './config/load-config.js';
import type { CarnxConfig } from './config/schema.js';
import { HealthServer } from './health/health-server.js';
import { readiness, type AgentState } from './health/readiness.js';
import { BpfObjectUnusable } from './host/host-errors.js';
import { seccompMode } from './host/preflight.js';
import { InterfaceLister, listInterfaces, type NetInterface } from './interfaces/interface-list.js';
import { interfaceFilter, NoInterfaceSelected } from './interfaces/interface-selector.js';
import { EthernetOnly } from './interfaces/link-type.js';
import type { Logger } from './log/logger.js';
import { ExportSettingsError } from './metrics/export-settings-error.js';
import type { CountingSide, MetricsController } from './metrics/metrics-controller.js';
import { readSnapshots } from './reader/counter-reader.js';
import type { InterfaceSnapshot } from './reader/interface-snapshot.js';

export interface AgentDeps {
  lib: Libbpf;
  logger: Logger;
  /**
   * Builds the metrics side without starting it; on reload `previous` is the running one, stopped only after this
   * returns. Throws (or rejects with) an ExportSettingsError naming the config key when the export settings are
   * unusable. May return a promise: the export side's modules may still be loading (cli/run-command.ts).
   */
  createMetrics: (
    counting: CountingSide,
    config: CarnxConfig,
    previous?: MetricsController,
  ) => MetricsController | Promise<MetricsController>;
  /** Sees every collection's snapshots, as the exporter gets them (log.summary); must not throw. */
  onCollected?: (snapshots: readonly InterfaceSnapshot[]) => void;
}

export class Agent {
  #config: CarnxConfig;
  readonly #deps: AgentDeps;
  readonly #log: Logger;
  readonly #reconciler: Reconciler;
  readonly #tcx: boolean;
  readonly #ethernetOnly: EthernetOnly;
  /** Re-reads only interfaces that changed since the last rescan. */
  readonly #lister = new InterfaceLister();
  /** Last reads of attachments released at a rescan, handed to the next collection once. */
  #finals: InterfaceSnapshot[] = [];
  #attachers: PinnedAttacher[];
  #metrics: MetricsController | undefined;
  #health: HealthServer | undefined;
  #state: AgentState = 'new';
  /** The reload being applied, if any: reloads run one after another, and stop() waits for the current one. */
  #reloading: Promise<void> = Promise.resolve();

  constructor(config: CarnxConfig, deps: AgentDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#log = deps.logger.child({ module: 'agent' });
    this.#tcx = tcxSupported(deps.lib);
    this.#ethernetOnly = new EthernetOnly(this.#log);
    this.#attachers = this.#newAttachers(config);
    this.#reconciler = new Reconciler(this.#attachers, {
      bpffs: config.bpffs.path,
      logger: this.#log,
      selected: () => this.#selectedInterfaces(),
      onAttachFailure: (reason) => this.#metrics?.recordAttachFailure(reason),
      finalRead: (a) =>
        this.#finals.push(...readSnapshots(deps.lib, [a], this.#log).map((s) => ({ ...s, final: true as const }))),
    });
  }

  /** One attacher per counted direction; transmit needs tcx, and its absence is said once here. */
  #newAttachers(config: CarnxConfig): PinnedAttacher[] {
    const { lib } = this.#deps;
    const wanted = config.interfaces.directions;
    if (wanted.includes('transmit') && !this.#tcx) {
      this.#log.warn(
        { directions: wanted },
        'this kernel has no tcx hooks (Linux 6.6+): counting receive only; auto falls back to generic XDP',
      );
    }
    const directions = wanted.filter((d) => d === 'receive' || this.#tcx);
    // Both directions' attachers learn a program's tag from one load (TC's is used by both).
    const tags = new ProgramTags(lib, resolveXdpObject(config));
    return directions.map(
      (direction: Direction) =>
        new PinnedAttacher({
          lib,
          objectPath: resolveXdpObject(config),
          bpffs: config.bpffs.path,
          direction,
          plan: direction === 'receive' ? receivePlan(lib, config.xdp.mode, this.#tcx) : transmitPlan(lib),
          known: knownHooks(lib, direction, this.#tcx),
          replaceForeign: config.xdp.replaceForeign,
          logger: this.#deps.logger.child({ module: 'attach', direction }),
          tags,
        }),
    );
  }

  /** The narrow view metrics reads through. */
  #counting(): CountingSide {
    return {
      // The producer keeps each final until an export carrying it succeeds.
      snapshots: () => {
        const read = [
          ...readSnapshots(this.#deps.lib, this.#reconciler.attachments(), this.#log),
          ...this.#finals.splice(0),
        ];
        this.#deps.onCollected?.(read);
        return read;
      },
      attachedByHook: () => this.#reconciler.attachedByHook(),
      countedInterfaces: () => this.#reconciler.attachedNames(),
      saveDeltaExported: (name, direction, counters, untilUnixNs) =>
        this.#reconciler.saveDeltaExported(name, direction, counters, untilUnixNs),
    };
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    // Health first: a taken port must end start-up before anything is loaded or attached (else systemd's restarts
    // would attach and detach every few seconds).
    await this.#startHealth();
    await this.#loadObjectOnce();
    sweepOtherLayouts(this.#config.bpffs.path, this.#log);
    const selected = this.#selectedInterfaces().length;
    if (selected === 0) throw new NoInterfaceSelected(listInterfaces().map((i) => i.name));
    // Each attach loads and verifies a program (about 30 ms): hundreds take seconds, so say what is under way.
    this.#log.info({ interfaces: selected }, `attaching to ${selected} interface${selected === 1 ? '' : 's'}`);
    // Metrics first, so attach failures at start-up are counted too, and unusable export settings (a config error)
    // end start-up before anything is attached.
    this.#metrics = await this.#deps.createMetrics(this.#counting(), this.#config);
    await this.#reconciler.reconcile();
    this.#metrics.start();
    this.#reconciler.rescanEvery(this.#config.interfaces.rescanIntervalMs);
    this.#state = 'running';
    this.#log.info({ interfaces: this.#reconciler.attachedNames(), refused: this.#reconciler.refusals() }, 'started');
  }

  /** Serves /livez and /readyz when health.listen is set (not live, not ready until running). */
  async #startHealth(): Promise<void> {
    const listen = parseHostPort(this.#config.health.listen);
    if (!listen) return;
    const server = new HealthServer(listen, {
      live: () => this.#state === 'running',
      ready: () =>
        readiness(this.#state, this.#reconciler.attachedNames().length, this.#metrics?.exportState() ?? 'pending'),
    });
    const port = await server.start();
    this.#health = server;
    this.#log.info({ listen: this.#config.health.listen, port }, 'serving /livez and /readyz');
  }

  #selectedInterfaces(): NetInterface[] {
    const wanted = interfaceFilter(this.#config.interfaces.include, this.#config.interfaces.exclude);
    return this.#ethernetOnly.filter(this.#lister.list().filter((i) => wanted(i.name)));
  }

  /** A verifier rejection or a corrupt object must stop start-up before anything is attached. */
  async #loadObjectOnce(): Promise<void> {
    try {
      // allSettled: start-up ends (and the process may exit) only once no load is left running on a worker thread.
      const results = await Promise.allSettled(this.#attachers.map((attacher) => attacher.verifyPrograms()));
      for (const result of results) if (result.status === 'rejected') throw result.reason;
    } catch (err) {
      const detail = err instanceof BpfError ? err.logTail.filter((l) => l.trim() !== '').slice(-15) : [];
      // The capabilities were checked before this, so EPERM under a seccomp filter is almost always the container
      // runtime's default profile refusing bpf(2) (podman and CRI-O before their profile allowed it with CAP_BPF);
      // libbpf's own hint (RLIMIT_MEMLOCK, CONFIG_BPF_SYSCALL) points the wrong way there.
      const seccomp =
        err instanceof BpfError && err.code === 'EPERM' && seccompMode() === 2
          ? "; a seccomp filter is active: the container runtime's profile must allow bpf(2) with CAP_BPF (config/README.md: Containers and seccomp)"
          : '';
      throw new BpfObjectUnusable(
        `could not load xdp.object ${resolveXdpObject(this.#config)}: ${(err as Error).message}${seccomp}`,
        detail,
      );
    }
  }

  /**
   * SIGHUP: new selection, log level, rescan interval, and export settings. Counts live in the kernel and are not
   * touched; a changed export side is rebuilt (its last export first). xdp.mode and xdp.object apply to interfaces
   * attached from now on.
   */
  reload(config: CarnxConfig): Promise<void> {
    // Two SIGHUPs close together must not interleave: the second would build its export side from the first's
    // half-stopped one (delta baselines), and both would start a pipeline. Each waits for the one before it.
    const next = this.#reloading.then(() => this.#applyReload(config));
    this.#reloading = next.catch(() => undefined);
    return next;
  }

  async #applyReload(config: CarnxConfig): Promise<void> {
    if (this.#state !== 'running') return;
    const exportChanged =
      JSON.stringify([config.export, config.otlp, config.resource]) !==
      JSON.stringify([this.#config.export, this.#config.otlp, this.#config.resource]);
    // Build the new export side before changing anything: if it cannot be built, the running one keeps exporting.
    let next: MetricsController | undefined;
    if (exportChanged && this.#metrics) {
      try {
        next = await this.#deps.createMetrics(this.#counting(), config, this.#metrics);
      } catch (err) {
        if (!(err instanceof ExportSettingsError)) throw err;
        this.#log.error({ problems: [err.message] }, 'reload refused: keeping the running configuration');
        return;
      }
    }
    this.#config = config;
    this.#deps.logger.level = config.log.level;
    this.#attachers = this.#newAttachers(config);
    this.#reconciler.useAttachers(this.#attachers);
    this.#reconciler.rescanEvery(config.interfaces.rescanIntervalMs);
    if (next && this.#metrics) {
      await this.#metrics.stop(config.export.shutdownTimeoutMs);
      this.#metrics = next;
      this.#metrics.start();
    }
    // A stop that came in while the old export side was finishing releases everything next: attach nothing new.
    if (this.#state === 'running') await this.#reconciler.reconcile();
    this.#log.info({ interfaces: this.#reconciler.attachedNames(), exportChanged }, 'configuration reloaded');
  }

  /**
   * Last export, then detach and unpin (or keep pins with xdp.keepAttachedOnExit). A second call is a no-op. Rejects
   * when an attachment could not be released (after trying every one).
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#state = 'stopping';
    // A reload half-way through would start its new export side after this stop: let it finish first (it is bounded
    // by export.shutdownTimeoutMs); the ones queued behind it see 'stopping' and do nothing.
    await this.#reloading;
    this.#reconciler.halt();
    await this.#health?.stop();
    try {
      await this.#metrics?.stop(this.#config.export.shutdownTimeoutMs);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'last export failed');
    }
    const keep = this.#config.xdp.keepAttachedOnExit;
    try {
      await this.#reconciler.releaseAll(keep);
    } finally {
      if (!keep) removeEmptyPinDirs(this.#config.bpffs.path);
      this.#state = 'stopped';
    }
    this.#log.info({ keptAttached: keep }, 'stopped');
  }
}
