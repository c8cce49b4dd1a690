// The signalled shutdown's outcome: the agent's stop() mapped to the exit code, a failed stop logged, never exit 0.
import type { Agent } from '../agent.js';
import { ExitCode, failureOf, type ExitCodeValue } from './exit-codes.js';

/** What stopping needs: the agent's stop() and a logger to say why it failed. */
export interface Stoppable {
  agent: Pick<Agent, 'stop'>;
  logger: { error(fields: object, msg: string): void };
}

/** Stops the agent: 0 when everything was released, else the failure's code (internal: 1), logged once. */
export async function stopAgent({ agent, logger }: Stoppable): Promise<ExitCodeValue> {
  try {
    await agent.stop();
    return ExitCode.ok;
  } catch (err) {
    const { exitCode } = failureOf(err);
    logger.error({ err: (err as Error).message, exitCode }, 'stop failed');
    return exitCode;
  }
}
