// The agent's own health metrics, reported through the SDK Meter: attached interfaces, failures, collection time.
import { ValueType, type Histogram, type Meter } from '@opentelemetry/api';
import { HOOKS, directionOf, xdpModeOf, type Hook } from '../attach/attach-hooks.js';
import type { Logger } from '../log/logger.js';

/** Attached interfaces by hook, as the agent knows them at collection time (hooks with none may be left out). */
export type AttachedByHook = () => Partial<Record<Hook, number>>;

/** Collection takes microseconds to milliseconds; the SDK's default boundaries (0..10000) suit milliseconds, not seconds. */
const DURATION_BOUNDARIES = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * Counts live here, not in SDK instruments, so the agent can record an attach failure before the pipeline starts;
 * bind() creates observable instruments that report them, all from one batch callback per collection.
 */
export class HealthInstruments {
  private readonly attachFailures = new Map<string, number>();
  private exportFailures = 0;
  private duration: Histogram | undefined;
  private callbackFailing = false;

  constructor(
    private readonly attachedByHook: AttachedByHook,
    private readonly logger: Logger,
  ) {}

  recordAttachFailure(reason: string): void {
    this.attachFailures.set(reason, (this.attachFailures.get(reason) ?? 0) + 1);
  }

  /** Seconds one read of the kernel counters took; dropped before bind() (nothing is collected then anyway). */
  recordCollection(seconds: number): void {
    this.duration?.record(seconds);
  }

  recordExportFailure(): void {
    this.exportFailures++;
  }

  /** Creates the instruments on `meter`; call once per MeterProvider. */
  bind(meter: Meter): void {
    // valueType INT: without it the SDK exports these counts as doubles.
    const interfaces = meter.createObservableGauge('carnx.agent.interfaces', {
      valueType: ValueType.INT,
      unit: '{interface}',
      description: 'Interfaces carnx counts on, by hook (XDP mode or TC ingress/egress) and direction.',
    });
    const attachFailures = meter.createObservableCounter('carnx.agent.attach.failures', {
      valueType: ValueType.INT,
      unit: '{failure}',
      description: 'Failed attempts to attach the XDP program to an interface, by reason.',
    });
    const exportFailures = meter.createObservableCounter('carnx.agent.export.failures', {
      valueType: ValueType.INT,
      unit: '{failure}',
      description: 'Metric exports that failed: the collector was unreachable, refused them or did not answer in time.',
    });
    this.duration = meter.createHistogram('carnx.agent.collection.duration', {
      unit: 's',
      description: "Time to read every interface's counters from the kernel and build the data points.",
      advice: { explicitBucketBoundaries: DURATION_BOUNDARIES },
    });
    meter.addBatchObservableCallback(
      (result) => {
        // Always observe totals (observable instruments are cumulative at the source), and never throw from here.
        result.observe(exportFailures, this.exportFailures);
        for (const [reason, n] of this.attachFailures) result.observe(attachFailures, n, { 'carnx.reason': reason });
        try {
          const counts = this.attachedByHook();
          // Every hook, zeros included, so a series does not vanish when its last interface moves elsewhere.
          for (const hook of HOOKS) result.observe(interfaces, counts[hook] ?? 0, hookAttributes(hook));
          this.callbackFailing = false;
        } catch (err) {
          const error = (err as Error)?.message ?? String(err);
          if (!this.callbackFailing)
            this.logger.warn({ error }, 'counting attached interfaces failed; logged once until it works');
          this.callbackFailing = true;
        }
      },
      [interfaces, attachFailures, exportFailures],
    );
  }
}

/** carnx.xdp.mode stays on XDP hooks: it was this metric's only attribute before TC hooks existed. */
function hookAttributes(hook: Hook): Record<string, string> {
  const mode = xdpModeOf(hook);
  return {
    'carnx.hook': hook,
    'network.io.direction': directionOf(hook),
    ...(mode === undefined ? {} : { 'carnx.xdp.mode': mode }),
  };
}
