// Keeps the interfaces whose frames start with an Ethernet header (the programs parse one); says once which it skips.
import type { Logger } from '../log/logger.js';
import type { ListedInterface } from './interface-list.js';

/** ARPHRD_ETHER: veth, bridges, bonds, VLANs, macvlan, tap, VXLAN, GRE-TAP, physical NICs. */
export const ARPHRD_ETHER = 1;

/** Names of the common link types without an Ethernet header (include/uapi/linux/if_arp.h), for the log. */
const LINK_TYPE_NAMES: Readonly<Record<number, string>> = {
  32: 'infiniband',
  280: 'can',
  512: 'ppp',
  519: 'rawip',
  768: 'ipip',
  769: 'ip6ip6',
  772: 'loopback',
  776: 'sit',
  778: 'ipgre',
  823: 'ip6gre',
  65534: 'none',
  65535: 'void',
};

export function linkTypeName(linkType: number): string {
  return LINK_TYPE_NAMES[linkType] ?? 'unknown';
}

/**
 * Filters out interfaces of other link types (tun, wireguard, ppp, wwan, ipip, ...: their frames begin with the IP
 * header, which the programs would read as an Ethernet header). Each skipped interface is logged once at info, and
 * again only when it changes (re-created with another type, or gone and back).
 */
export class EthernetOnly {
  readonly #log: Logger;
  /** Skipped at the last call: name -> link type. */
  #skipped = new Map<string, number>();

  constructor(logger: Logger) {
    this.#log = logger;
  }

  filter<T extends ListedInterface>(interfaces: readonly T[]): T[] {
    const skipped = new Map<string, number>();
    for (const i of interfaces) {
      if (i.linkType === ARPHRD_ETHER) continue;
      skipped.set(i.name, i.linkType);
      if (this.#skipped.get(i.name) === i.linkType) continue;
      this.#log.info(
        { interface: i.name, linkType: i.linkType, linkTypeName: linkTypeName(i.linkType) },
        'not counting on interface: its link type has no Ethernet header',
      );
    }
    this.#skipped = skipped;
    return interfaces.filter((i) => i.linkType === ARPHRD_ETHER);
  }
}
