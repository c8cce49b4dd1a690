/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What carnx counts for one frame, independent of the hook: count_frame() classifies the
 * bytes from data to data_end and adds the frame to a struct carnx_counters. It uses no
 * context or helper of any program type, so the XDP program and a TC classifier (data and
 * data_end from struct __sk_buff) include it unchanged and count alike. It never writes to
 * the frame.
 */
#ifndef CARNX_CLASSIFY_H
#define CARNX_CLASSIFY_H

#include "parse_helpers.h"
#include "carnx_counters.h"

/* What one frame adds to the counters. */
struct frame_verdict {
	int cls;
	int malformed_layer; /* -1 when every header we parsed fit */
	int tcp_flags;	     /* -1 when no TCP header was read */
	int vlan_tags;
};

static __always_inline int ipv4_class(int protocol)
{
	switch (protocol) {
	case IPPROTO_TCP:
		return CARNX_CLASS_IPV4_TCP;
	case IPPROTO_UDP:
		return CARNX_CLASS_IPV4_UDP;
	case IPPROTO_ICMP:
		return CARNX_CLASS_IPV4_ICMP;
	default:
		return CARNX_CLASS_IPV4_OTHER;
	}
}

static __always_inline int ipv6_class(int next_header)
{
	switch (next_header) {
	case IPPROTO_TCP:
		return CARNX_CLASS_IPV6_TCP;
	case IPPROTO_UDP:
		return CARNX_CLASS_IPV6_UDP;
	case IPPROTO_ICMPV6:
		return CARNX_CLASS_IPV6_ICMPV6;
	case IPPROTO_NONE:
		return CARNX_CLASS_IPV6_NONE;
	default: /* includes -2: a chain longer than we walk */
		return CARNX_CLASS_IPV6_OTHER;
	}
}

/* The first bucket whose bound is at least len. Fully unrolled, the loop becomes one compare
 * per bound with the bound as an immediate, as if written out by hand. */
static __always_inline int size_bucket(__u64 len)
{
	const __u32 bounds[] = { CARNX_SIZE_BUCKET_BOUNDS };
	int i;

#pragma unroll
	for (i = 0; i < CARNX_SIZE_BOUND_COUNT; i++)
		if (len <= bounds[i])
			return i;
	return CARNX_SIZE_BOUND_COUNT;
}

/* After the network header: proto is what parse_iphdr() or parse_ipv6hdr() returned. */
static __always_inline void classify_transport(struct hdr_cursor *nh, void *data_end, int ipv6,
					       int proto, int non_first_fragment,
					       struct frame_verdict *v)
{
	if (proto == -1) {
		v->malformed_layer = CARNX_LAYER_L3;
		return;
	}
	/* Fragments other than the first carry no transport header. */
	if (!non_first_fragment && parse_transport(nh, data_end, ipv6, proto, &v->tcp_flags) < 0)
		v->malformed_layer = CARNX_LAYER_L4;
}

/* Fills *v for the frame from data to data_end: its class, the layer whose header did not
 * fit or was invalid, the TCP flags and how many VLAN tags it carries. */
static __always_inline void classify_frame(void *data, void *data_end, struct frame_verdict *v)
{
	struct hdr_cursor nh = { .pos = data };
	int proto, non_first_fragment = 0;

	v->cls = CARNX_CLASS_OTHER;
	v->malformed_layer = -1;
	v->tcp_flags = -1;
	v->vlan_tags = 0;

	proto = parse_ethhdr(&nh, data_end);
	/* Most frames are untagged: test once here instead of walking the tag loop. */
	if (proto >= 0 && proto_is_vlan(proto)) {
		int tags = 0;

		proto = parse_vlan_tags(&nh, data_end, proto, &tags);
		v->vlan_tags = tags;
	}
	if (proto < 0) {
		v->malformed_layer = CARNX_LAYER_L2;
		return;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &non_first_fragment);
		v->cls = proto < 0 ? CARNX_CLASS_IPV4_NONE : ipv4_class(proto);
		classify_transport(&nh, data_end, 0, proto, non_first_fragment, v);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ipv6hdr(&nh, data_end, &non_first_fragment);
		v->cls = proto == -1 ? CARNX_CLASS_IPV6_NONE : ipv6_class(proto);
		classify_transport(&nh, data_end, 1, proto, non_first_fragment, v);
	} else if (proto == bpf_htons(ETH_P_ARP)) {
		v->cls = CARNX_CLASS_ARP;
		if (parse_arp(&nh, data_end) < 0)
			v->malformed_layer = CARNX_LAYER_L3;
	}
}

/*
 * Adds the frame from data to data_end to *c. len is the whole frame's length, for the byte
 * counters and size buckets: data_end - data at XDP; skb->len at TC, where data_end ends the
 * linear part only (pull the headers in first, or a frame whose headers are not all linear
 * counts as malformed). A per-CPU *c needs no atomics: XDP and TC programs run with bottom
 * halves disabled, so two never interleave on one CPU.
 */
static __always_inline void count_frame(struct carnx_counters *c, void *data, void *data_end,
					__u64 len)
{
	struct frame_verdict v;
	int i;

	classify_frame(data, data_end, &v);

	/* The bounds checks below are no-ops for the values classify_frame() returns; they
	 * let the verifier prove every index in range. */
	if (v.cls < 0 || v.cls >= CARNX_CLASS_COUNT)
		v.cls = CARNX_CLASS_OTHER;
	c->packets[v.cls]++;
	c->bytes[v.cls] += len;
	c->size_buckets[size_bucket(len)]++;
	if (v.vlan_tags)
		c->vlan_packets++;
	if (v.malformed_layer >= 0 && v.malformed_layer < CARNX_LAYER_COUNT)
		c->malformed[v.malformed_layer]++;
	/* Increment only the flags that are set: most segments carry one or two, and a
	 * predictable branch is cheaper than eight read-modify-writes. */
	if (v.tcp_flags > 0) {
#pragma unroll
		for (i = 0; i < CARNX_TCP_FLAG_COUNT; i++)
			if (v.tcp_flags & (1 << i))
				c->tcp_flags[i]++;
		if (v.tcp_flags & (1 << CARNX_TCP_SYN))
			c->tcp_syn[(v.tcp_flags >> CARNX_TCP_ACK) & 1]++;
	}
}

#endif /* CARNX_CLASSIFY_H */
