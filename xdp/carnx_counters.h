/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The counter layout shared by the XDP program and the agent: one per-CPU value per
 * interface. src/bpf/counter-layout.ts mirrors it; test/unit/counter-layout.test.ts
 * compiles this header and compares sizes, offsets and enum values with it, so a
 * change made on one side only fails the tests.
 */
#ifndef CARNX_COUNTERS_H
#define CARNX_COUNTERS_H

/* Bump when struct carnx_counters changes: the pin path carries it, so an agent never
 * reuses a pinned map whose layout it does not know. */
#define CARNX_LAYOUT_VERSION 1

/* Every frame lands in exactly one class: (network, transport). */
enum carnx_class {
	CARNX_CLASS_IPV4_TCP = 0,
	CARNX_CLASS_IPV4_UDP = 1,
	CARNX_CLASS_IPV4_ICMP = 2,
	CARNX_CLASS_IPV4_OTHER = 3, /* any other IP protocol number */
	CARNX_CLASS_IPV4_NONE = 4,  /* IPv4 header missing or invalid */
	CARNX_CLASS_IPV6_TCP = 5,
	CARNX_CLASS_IPV6_UDP = 6,
	CARNX_CLASS_IPV6_ICMPV6 = 7,
	CARNX_CLASS_IPV6_OTHER = 8, /* other next header, or a chain too long to walk */
	CARNX_CLASS_IPV6_NONE = 9,  /* no next header (59), or header missing or invalid */
	CARNX_CLASS_ARP = 10,
	CARNX_CLASS_OTHER = 11, /* any other ethertype, or a broken VLAN tag */
	CARNX_CLASS_COUNT = 12,
};

/* Bit positions of the TCP flags, in header order (FIN is bit 0 of byte 13). */
enum carnx_tcp_flag {
	CARNX_TCP_FIN = 0,
	CARNX_TCP_SYN = 1,
	CARNX_TCP_RST = 2,
	CARNX_TCP_PSH = 3,
	CARNX_TCP_ACK = 4,
	CARNX_TCP_URG = 5,
	CARNX_TCP_ECE = 6,
	CARNX_TCP_CWR = 7,
	CARNX_TCP_FLAG_COUNT = 8,
};

/* Segments with SYN set, split by ACK: handshake opens (SYN) and their answers (SYN-ACK).
 * Per-flag counts cannot tell these apart, since a SYN-ACK counts under both flags. */
enum carnx_syn_kind {
	CARNX_SYN_ONLY = 0,
	CARNX_SYN_ACK = 1,
	CARNX_SYN_KIND_COUNT = 2,
};

/* The layer at which a header did not fit in the frame or was invalid. */
enum carnx_layer {
	CARNX_LAYER_L2 = 0, /* Ethernet or VLAN tag */
	CARNX_LAYER_L3 = 1, /* IPv4, IPv6 (with extension headers), ARP */
	CARNX_LAYER_L4 = 2, /* TCP, UDP, ICMP, ICMPv6 */
	CARNX_LAYER_COUNT = 3,
};

/* Frame-size buckets: bucket i counts the frames of at most the i-th bound's bytes (and more
 * than the bound before it); the last bucket, past the last bound, is unbounded. The only
 * definition of the bounds in C, an initialiser list (`{ CARNX_SIZE_BUCKET_BOUNDS }`): the
 * program's bucket search reads them, and src/bpf/counter-layout.ts (SIZE_BUCKET_BOUNDS) is
 * checked against them value by value. */
#define CARNX_SIZE_BUCKET_BOUNDS 64, 127, 255, 511, 1023, 1518, 9000
#define CARNX_SIZE_BOUND_COUNT \
	(sizeof((unsigned int[]){ CARNX_SIZE_BUCKET_BOUNDS }) / sizeof(unsigned int))
#define CARNX_SIZE_BUCKET_COUNT (CARNX_SIZE_BOUND_COUNT + 1)

/* Bytes are frame lengths as XDP sees them: Ethernet header and VLAN tags included,
 * FCS excluded. */
struct carnx_counters {
	__u64 packets[CARNX_CLASS_COUNT];
	__u64 bytes[CARNX_CLASS_COUNT];
	__u64 tcp_flags[CARNX_TCP_FLAG_COUNT];
	__u64 tcp_syn[CARNX_SYN_KIND_COUNT];
	__u64 vlan_packets; /* frames with at least one 802.1Q/802.1ad tag */
	__u64 malformed[CARNX_LAYER_COUNT];
	__u64 size_buckets[CARNX_SIZE_BUCKET_COUNT];
};

/* The agent's state for one interface, pinned beside the counters and never touched by
 * the program: when counting started (so a restarted agent reports the same start time),
 * and, for delta temporality, the counters as of the last successful export (so a
 * restarted agent neither loses nor resends what was counted before it). */
struct carnx_meta {
	__u64 counting_since_unix_ns;
	__u32 layout_version;
	__u32 ifindex;
	__u64 delta_exported_until_unix_ns; /* 0: nothing exported as delta yet */
	struct carnx_counters delta_exported;
};

#endif /* CARNX_COUNTERS_H */
