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
	int l4_offset;	/* where the transport header starts, from data */
	int l4_hdr_len; /* its length (TCP with options); 0 when none was read */
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
	if (!non_first_fragment &&
	    parse_transport(nh, data_end, ipv6, proto, &v->tcp_flags, &v->l4_hdr_len) < 0)
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
	v->l4_offset = 0;
	v->l4_hdr_len = 0;

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
		v->l4_offset = nh.pos - data;
		v->cls = proto < 0 ? CARNX_CLASS_IPV4_NONE : ipv4_class(proto);
		classify_transport(&nh, data_end, 0, proto, non_first_fragment, v);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ipv6hdr(&nh, data_end, &non_first_fragment);
		v->l4_offset = nh.pos - data;
		v->cls = proto == -1 ? CARNX_CLASS_IPV6_NONE : ipv6_class(proto);
		classify_transport(&nh, data_end, 1, proto, non_first_fragment, v);
	} else if (proto == bpf_htons(ETH_P_ARP)) {
		v->cls = CARNX_CLASS_ARP;
		if (parse_arp(&nh, data_end) < 0)
			v->malformed_layer = CARNX_LAYER_L3;
	}
}

/*
 * Adds one classified frame to *c. len is the whole frame's length, for the byte counters and
 * size buckets: data_end - data at XDP; skb->len at TC, where data_end ends the linear part
 * only (a frame whose headers are not all linear counts as malformed). A per-CPU *c needs no
 * atomics: XDP and TC programs run with bottom halves disabled, so two never interleave on
 * one CPU.
 */
static __always_inline void count_verdict(struct carnx_counters *c, struct frame_verdict *vp,
					  __u64 len)
{
	struct frame_verdict v = *vp;
	int i;

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

/* Adds the one frame from data to data_end, of length len, to *c. */
static __always_inline void count_frame(struct carnx_counters *c, void *data, void *data_end,
					__u64 len)
{
	struct frame_verdict v;

	classify_frame(data, data_end, &v);
	count_verdict(c, &v, len);
}

/*
 * A GSO skb (TSO/GSO at egress, GRO at ingress) stands for segs wire frames, each carrying the
 * headers again: it is counted as those segments. Each segment but the last carries gso_size bytes
 * of payload. Which headers repeat: wire_len is the kernel's own wire length of the skb where it
 * has one (skb->wire_len at TC egress: every segment's headers, a tunnel's inner ones included,
 * as qdisc_pkt_len_init() works them out); elsewhere it is at most len, and the headers are those
 * classify_frame() read, up to the end of the transport header. A skb from an untrusted source
 * (SKB_GSO_DODGY: a VM's virtio-net header, a packet socket) has gso_segs 0 until it is split:
 * its segments are worked out from the payload, as the kernel does. TCP flags follow the
 * kernel's segmentation: FIN and PSH on the last segment, CWR on the first, SYN and RST never on a
 * GSO skb; the other flags on every segment.
 */
static __always_inline void count_segments(struct carnx_counters *c, void *data, void *data_end,
					   __u64 len, __u32 segs, __u32 gso_size, __u64 wire_len)
{
	const int once = 1 << CARNX_TCP_FIN | 1 << CARNX_TCP_SYN | 1 << CARNX_TCP_RST |
			 1 << CARNX_TCP_PSH | 1 << CARNX_TCP_CWR;
	struct frame_verdict v;
	__u64 headers, last;
	int i;

	classify_frame(data, data_end, &v);
	headers = v.l4_offset + v.l4_hdr_len;
	if (gso_size && !segs && v.l4_hdr_len && headers < len)
		segs = (len - headers + gso_size - 1) / gso_size;
	/* The headers every segment repeats: the kernel's figure where it has one (segs >= 2 there). */
	if (segs >= 2 && wire_len > len)
		headers = (wire_len - len) / (segs - 1);
	/* Without a transport header to repeat, or with sizes that do not add up, the skb is
	 * counted as the one frame it is. */
	if (segs < 2 || !gso_size || !v.l4_hdr_len || headers >= len ||
	    len - headers <= (__u64)(segs - 1) * gso_size) {
		count_verdict(c, &v, len);
		return;
	}
	/* The last segment: the headers and what the others did not carry. */
	last = len - (__u64)(segs - 1) * gso_size;

	if (v.cls < 0 || v.cls >= CARNX_CLASS_COUNT)
		v.cls = CARNX_CLASS_OTHER;
	c->packets[v.cls] += segs;
	c->bytes[v.cls] += len + (__u64)(segs - 1) * headers;
	c->size_buckets[size_bucket(headers + gso_size)] += segs - 1;
	c->size_buckets[size_bucket(last)]++;
	if (v.vlan_tags)
		c->vlan_packets += segs;
	if (v.tcp_flags > 0) {
#pragma unroll
		for (i = 0; i < CARNX_TCP_FLAG_COUNT; i++)
			if (v.tcp_flags & (1 << i))
				c->tcp_flags[i] += (once & (1 << i)) ? 1 : segs;
		if (v.tcp_flags & (1 << CARNX_TCP_SYN))
			c->tcp_syn[(v.tcp_flags >> CARNX_TCP_ACK) & 1]++;
	}
}

#endif /* CARNX_CLASSIFY_H */
