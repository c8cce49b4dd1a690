// The hooks the live benchmarks compare, each attached the way users get it: the real agent, run with --xdp-mode.
import { sum } from '../../src/bpf/counter-layout.js';
import { AgentProcess, TestBpffs } from '../fixtures/agent-process.js';
import { msgIs } from '../fixtures/json-log.js';

/** A row of the live benchmarks: no program (the baseline), or the agent counting in one receive hook. */
export interface LiveHook {
  name: string;
  /** The agent's --xdp-mode; undefined: no agent, nothing attached. */
  mode?: 'native' | 'tc' | 'generic';
  /** The hook the agent must log as attached for the receive side, or the run is void. */
  expect?: 'xdp-native' | 'tc-ingress' | 'xdp-generic';
}

export const BASELINE: LiveHook = { name: 'no program' };
export const LIVE_HOOKS: LiveHook[] = [
  BASELINE,
  { name: 'carnx XDP native', mode: 'native', expect: 'xdp-native' },
  { name: 'carnx TC ingress (tcx)', mode: 'tc', expect: 'tc-ingress' },
  { name: 'carnx XDP generic', mode: 'generic', expect: 'xdp-generic' },
];

/** An attached hook: `packets()` reads the agent's pinned receive counters (null without an agent). */
export interface Attached {
  packets(): bigint | null;
  detach(): Promise<void>;
  /** For a signal handler: SIGKILLs the agent and removes its pins (which detaches), without waiting. */
  abort(): void;
}

/** The attachment a bench holds at the moment, for its signal handler to abort. */
export interface Holding {
  current?: Attached;
}

const AGENT_START_MS = 30_000;

/**
 * Starts the agent on `ifname` alone, in `hook`'s mode, with its pins in a private directory (a carnx already on
 * this host keeps its own), exporting to a closed local port every 10 s: what it costs while counting is part of
 * the measurement, as on a real node. Both directions, as the agent's default: on a TCP receiver the ACKs it sends
 * pass its TC egress program.
 */
export async function attachHook(hook: LiveHook, ifname: string, holding: Holding = {}): Promise<Attached> {
  if (hook.mode === undefined) return { packets: () => null, detach: async () => {}, abort: () => {} };
  const bpffs = new TestBpffs(`bench-${hook.mode}`);
  const agent = new AgentProcess([
    'run',
    '--interfaces-include',
    ifname,
    '--interfaces-exclude=',
    '--xdp-mode',
    hook.mode,
    '--bpffs-path',
    bpffs.path,
    '--otlp-endpoint',
    'http://127.0.0.1:9',
    '--export-interval-ms',
    '10000',
    '--log-level',
    'info',
  ]);
  const abort = () => {
    agent.child.kill('SIGKILL');
    bpffs.destroy();
  };
  // Held from the spawn on: a signal while the agent starts must not leave it or its pins behind.
  holding.current = { packets: () => null, detach: async () => abort(), abort };
  try {
    await agent.waitForLog(msgIs('attached', { interface: ifname, hook: hook.expect }), AGENT_START_MS);
  } catch (err) {
    await agent.stop('SIGKILL');
    bpffs.destroy();
    holding.current = undefined;
    throw new Error(`${hook.name}: the agent did not attach to ${ifname}: ${(err as Error).message}`);
  }
  const attached: Attached = {
    packets: () => sum(bpffs.read(ifname).counters.packets),
    detach: async () => {
      await agent.stop('SIGTERM');
      bpffs.destroy();
      holding.current = undefined;
    },
    abort,
  };
  holding.current = attached;
  return attached;
}
