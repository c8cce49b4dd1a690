// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * carnx's XDP program: classifies every received frame and adds it to one per-CPU
 * struct of counters. One map lookup per frame, never writes to the frame, and every
 * path returns XDP_PASS: counting must never cost the host its traffic.
 */
#include "parse_helpers.h"
#include "carnx_counters.h"

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#define ICMP_HEADER_LEN 8	/* RFC 792: type, code, checksum and four more bytes */
#define ICMPV6_HEADER_LEN 4	/* RFC 4443: type, code, checksum */

/*
 * One entry per loaded object, and one object per interface (see README, "Counting
 * model"): the lookup of key 0 in a one-entry per-CPU array is inlined by the verifier
 * into a few instructions. XDP runs in softirq on one CPU at a time, so the per-CPU
 * value needs no atomics.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct carnx_counters);
} carnx_counters SEC(".maps");

/* Never read on the packet path: the agent keeps the counting start time here. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct carnx_meta);
} carnx_meta SEC(".maps");

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
	default:	/* includes -2: a chain longer than we walk */
		return CARNX_CLASS_IPV6_OTHER;
	}
}

/* The first bucket whose bound is at least len. Fully unrolled, the loop becomes one compare
 * per bound with the bound as an immediate, as if written out by hand. */
static __always_inline int size_bucket(__u64 len)
{
	const __u32 bounds[] = CARNX_SIZE_BUCKET_BOUNDS;
	int i;

#pragma unroll
	for (i = 0; i < CARNX_SIZE_BOUND_COUNT; i++)
		if (len <= bounds[i])
			return i;
	return CARNX_SIZE_BOUND_COUNT;
}

/* What one frame adds to the counters. */
struct frame_verdict {
	int cls;
	int malformed_layer;	/* -1 when every header we parsed fit */
	int tcp_flags;		/* -1 when no TCP header was read */
	int vlan_tags;
};

/* Transport header checks; fragments other than the first never get here. */
static __always_inline void parse_transport(struct hdr_cursor *nh, void *data_end,
					    struct frame_verdict *v)
{
	__u8 *l4 = nh->pos;
	int need;

	switch (v->cls) {
	case CARNX_CLASS_IPV4_TCP:
	case CARNX_CLASS_IPV6_TCP:
		if ((void *)(l4 + 20) > data_end || (l4[12] >> 4) < 5) {
			v->malformed_layer = CARNX_LAYER_L4;
			return;
		}
		v->tcp_flags = l4[13];
		return;
	case CARNX_CLASS_IPV4_UDP:
	case CARNX_CLASS_IPV6_UDP:
		need = 8;
		break;
	case CARNX_CLASS_IPV4_ICMP:
		need = ICMP_HEADER_LEN;
		break;
	case CARNX_CLASS_IPV6_ICMPV6:
		need = ICMPV6_HEADER_LEN;
		break;
	default:
		return;
	}
	if ((void *)(l4 + need) > data_end)
		v->malformed_layer = CARNX_LAYER_L4;
}

static __always_inline void classify(void *data, void *data_end, struct frame_verdict *v)
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
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ipv6hdr(&nh, data_end, &non_first_fragment);
		v->cls = proto == -1 ? CARNX_CLASS_IPV6_NONE : ipv6_class(proto);
	} else if (proto == bpf_htons(ETH_P_ARP)) {
		v->cls = CARNX_CLASS_ARP;
		if (parse_arp(&nh, data_end) < 0)
			v->malformed_layer = CARNX_LAYER_L3;
		return;
	} else {
		return;
	}

	if (proto == -1) {
		v->malformed_layer = CARNX_LAYER_L3;
		return;
	}
	if (!non_first_fragment)
		parse_transport(&nh, data_end, v);
}

SEC("xdp")
int carnx_count(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	__u64 len = data_end - data;
	struct carnx_counters *c;
	struct frame_verdict v;
	__u32 key = 0;
	int i;

	c = bpf_map_lookup_elem(&carnx_counters, &key);
	if (!c)
		return XDP_PASS;

	classify(data, data_end, &v);

	/* The bounds checks below are no-ops for the values classify() returns; they
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
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
