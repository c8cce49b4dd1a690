// The throughput bench's traffic: a veth pair with GRO on the receiving side, and iperf3 from the namespace across it.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { command, commandResult } from '../fixtures/command.js';
import type { VethPair } from '../fixtures/netns.js';
import { waitFor } from '../fixtures/wait.js';

export interface IperfResult {
  gbps: number;
  retransmits: number;
  /** The receiving side's CPU use as iperf3 reports it (the server process, user + system). */
  receiverCpuPercent: number;
}

export function requireTools(): void {
  for (const tool of ['iperf3', 'ethtool', 'ss']) {
    if (commandResult('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is not installed: npm run bench installs it (xdp/install-build-deps.sh), or apt-get it`);
    }
  }
}

/**
 * Readies a created pair: its /30 must be the only one of its kind here (or replies to the namespace could leave by
 * another veth); the host side receives with GRO on; the namespace side sends with TSO and GSO off, so MTU-sized
 * segments cross the pair for GRO to merge. Returns the MTU.
 */
export function readyForGro(pair: VethPair): number {
  const prefix = pair.hostAddress.replace(/\.1$/, '.');
  const holders = command('ip', ['-o', '-4', 'addr', 'show'])
    .split('\n')
    .filter((line) => line.includes(` ${prefix}`));
  if (holders.length !== 1) {
    throw new Error(`${prefix}0/30 is also on another interface here (another test's pair?):\n${holders.join('\n')}`);
  }
  command('ethtool', ['-K', pair.host, 'gro', 'on']);
  pair.exec('ethtool', ['-K', pair.peer, 'tso', 'off', 'gso', 'off']);
  const features = command('ethtool', ['-k', pair.host]);
  if (!/^generic-receive-offload: on/m.test(features)) {
    throw new Error(`GRO did not turn on for ${pair.host}:\n${features}`);
  }
  return Number(readFileSync(`/sys/class/net/${pair.host}/mtu`, 'utf8').trim());
}

/** An iperf3 server on the host side's address; kill() it when done. */
export async function startServer(pair: VethPair, port: number): Promise<ChildProcess> {
  const server = spawn('iperf3', ['-s', '-B', pair.hostAddress, '-p', String(port)], { stdio: 'ignore' });
  const exited = new Promise<never>((_, reject) =>
    server.once('exit', (code) => reject(new Error(`the iperf3 server exited (${code})`))),
  );
  exited.catch(() => {}); // observed below while waiting; afterwards the kill in clean-up ends it
  try {
    await Promise.race([
      exited,
      waitFor('the iperf3 server to listen', () =>
        command('ss', ['-Hltn', 'src', `${pair.hostAddress}:${port}`]).trim() !== '' ? true : undefined,
      ),
    ]);
  } catch (err) {
    server.kill();
    throw err;
  }
  return server;
}

/** One iperf3 run of `seconds` from the namespace to the host side's server. */
export async function iperf(pair: VethPair, port: number, seconds: number): Promise<IperfResult> {
  const args = ['-c', pair.hostAddress, '-B', pair.peerAddress, '-p', String(port), '-t', String(seconds), '-J'];
  const out = await pair.run('iperf3', args);
  const end = JSON.parse(out).end;
  const bps = end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error(`iperf3 reported no received throughput:\n${out.slice(0, 2000)}`);
  return {
    gbps: bps / 1e9,
    retransmits: Number(end.sum_sent?.retransmits ?? 0),
    receiverCpuPercent: Number(end.cpu_utilization_percent?.remote_total ?? Number.NaN),
  };
}
