// Whether the agent is ready (kubelet, systemd): running, attached somewhere, and its exports are not failing.
export type AgentState = 'new' | 'running' | 'stopping' | 'stopped';
/** Mirrors the metrics side's export state: no outcome yet, the last export succeeded, or it failed. */
export type ExportOutcome = 'pending' | 'exporting' | 'failing';

export interface Readiness {
  ready: boolean;
  /** What is missing, or what the agent is doing: the body of /readyz. */
  reason: string;
}

export function readiness(state: AgentState, attachedCount: number, exports: ExportOutcome): Readiness {
  if (state !== 'running') return { ready: false, reason: `agent is ${state}` };
  if (attachedCount === 0) return { ready: false, reason: 'attached to no interface' };
  if (exports === 'pending') return { ready: false, reason: 'no export has completed yet' };
  if (exports === 'failing') return { ready: false, reason: 'exports are failing' };
  return { ready: true, reason: `counting on ${attachedCount} interface(s), exporting` };
}
