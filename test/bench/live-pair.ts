// The live packets/s bench's veth pair: both ends in the root namespace, quiet, the receiving end polled by NAPI.
import { readFileSync, writeFileSync } from 'node:fs';
import { command } from '../fixtures/command.js';

/**
 * Both ends in this namespace (the generator sends from `sender`, which needs its ifindex here); no IPv6, so the
 * kernel sends nothing of its own across. `receiver` has GRO on: veth then polls it with NAPI, which it needs to
 * take frames transmitted by XDP at all when it has no XDP program itself.
 */
export class BenchPair {
  readonly receiver: string;
  readonly sender: string;

  /** `tag` tells apart the pairs of one process. */
  constructor(tag = 'b') {
    this.receiver = `cxlb${process.pid % 100000}${tag}r`;
    this.sender = `cxlb${process.pid % 100000}${tag}s`;
  }

  create(): this {
    command('ip', ['link', 'add', this.receiver, 'type', 'veth', 'peer', 'name', this.sender]);
    for (const dev of [this.receiver, this.sender]) {
      writeFileSync(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1');
      command('ip', ['link', 'set', dev, 'up']);
    }
    command('ethtool', ['-K', this.receiver, 'gro', 'on']);
    return this;
  }

  ifindex(dev: string): number {
    return Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8'));
  }

  rxPackets(): bigint {
    return BigInt(readFileSync(`/sys/class/net/${this.receiver}/statistics/rx_packets`, 'utf8').trim());
  }

  destroy(): void {
    try {
      command('ip', ['link', 'del', this.receiver]);
    } catch {
      // never made, or already gone
    }
  }
}
