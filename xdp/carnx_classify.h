/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What carnx counts for one frame, independent of the hook: count_frame() classifies the bytes
 * from data to data_end and adds the frame to a struct carnx_counters; count_gso_frame() adds a
 * GSO skb as the segments it stands for. They use no context or helper of any program type, so
 * the XDP program and a TC classifier (data and data_end from struct __sk_buff) include them
 * unchanged and count alike. They never write to the frame.
 *
 * Shaped for a short path per frame: the classifier counts the frame where its verdict becomes
 * known (settle()), so each of those places counts with its class and malformed layer as
 * constants: no verdict is carried to a shared tail, where every early exit would first have to
 * set up the values that tail reads. A GSO skb, rare and worth many frames, is the exception: its
 * verdict goes to one tail (count_gso_frame()), which keeps the verifier's work small.
 */
#ifndef CARNX_CLASSIFY_H
#define CARNX_CLASSIFY_H

#include "parse_helpers.h"
#include "carnx_counters.h"

#define NOT_MALFORMED -1
#define NO_TCP_FLAGS -1
#define FLAG(name) (1 << CARNX_TCP_##name)

/* What one frame adds to the counters. */
struct frame_verdict {
	int cls;
	int malformed_layer; /* NOT_MALFORMED when every header we parsed fit */
	int tcp_flags;	     /* NO_TCP_FLAGS when no TCP header was read */
	int vlan_tags;
	/* From the start of the frame to the end of its transport header (TCP with options) when
	 * one was read, else 0: what every segment of a GSO skb repeats. */
	__u64 headers;
};

/* What TC knows of a GSO skb beyond its bytes (see count_gso_verdict()). */
struct gso_skb {
	__u32 segs;
	__u32 gso_size;
	__u64 wire_len;
};

/* One frame being classified: where its verdict goes. out is NULL in count_frame(), a constant
 * once inlined, so the path of a single frame carries none of the segment arithmetic. */
struct frame {
	struct carnx_counters *c;
	void *data;
	__u64 len;
	/* A GSO skb's verdict is kept here and counted once classified (count_gso_frame()). */
	struct frame_verdict *out;
	int vlan_tags; /* of a GSO skb; a single frame's tags are counted where they are parsed */
};

/* The first bucket whose bound is at least len. Fully unrolled, the loop becomes one compare
 * per bound with the bound as an immediate, as if written out by hand. Searched from the
 * smallest: a frame of at most 127 bytes, the most frequent kind, costs one or two compares. */
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

/*
 * Adds a segment's TCP flags: every flag set adds `every`, except those in `once_mask`, which
 * add `once` (see count_gso_verdict()). The combinations nearly every segment carries are one
 * case each, a compare or two and constant-offset increments; any other walks the flags.
 */
static __always_inline void add_tcp_flags(struct carnx_counters *c, int flags, __u64 every,
					  __u64 once, int once_mask)
{
	int i;

#define ADD_FLAG(name) (c->tcp_flags[CARNX_TCP_##name] += (once_mask & FLAG(name)) ? once : every)
	switch (flags) {
	case FLAG(ACK):
		ADD_FLAG(ACK);
		return;
	case FLAG(PSH) | FLAG(ACK):
		ADD_FLAG(PSH);
		ADD_FLAG(ACK);
		return;
	case FLAG(SYN):
		ADD_FLAG(SYN);
		c->tcp_syn[CARNX_SYN_ONLY]++;
		return;
	case FLAG(SYN) | FLAG(ACK):
		ADD_FLAG(SYN);
		ADD_FLAG(ACK);
		c->tcp_syn[CARNX_SYN_ACK]++;
		return;
	case FLAG(FIN) | FLAG(ACK):
		ADD_FLAG(FIN);
		ADD_FLAG(ACK);
		return;
	case FLAG(RST):
		ADD_FLAG(RST);
		return;
	case FLAG(RST) | FLAG(ACK):
		ADD_FLAG(RST);
		ADD_FLAG(ACK);
		return;
	}
#undef ADD_FLAG
#pragma unroll
	for (i = 0; i < CARNX_TCP_FLAG_COUNT; i++)
		if (flags & (1 << i))
			c->tcp_flags[i] += (once_mask & (1 << i)) ? once : every;
	if (flags & FLAG(SYN))
		c->tcp_syn[(flags >> CARNX_TCP_ACK) & 1]++;
}

/*
 * Adds one classified frame to *c, all but its size bucket (and at XDP its VLAN tags: both are
 * counted once, before the classifier settles; see count_frame()). len is the whole frame's length:
 * data_end - data at XDP; skb->len at TC, where data_end ends the linear part only (a frame
 * whose headers are not all linear counts as malformed). A per-CPU *c needs no atomics: XDP and
 * TC programs run with bottom halves disabled, so two never interleave on one CPU. In the
 * classifier every index is a constant on each path, which the verifier checks against the
 * array; count_gso_verdict() bounds its own.
 */
static __always_inline void count_verdict(struct carnx_counters *c, const struct frame_verdict *v,
					  __u64 len)
{
	c->packets[v->cls]++;
	c->bytes[v->cls] += len;
	if (v->vlan_tags)
		c->vlan_packets++;
	if (v->malformed_layer != NOT_MALFORMED)
		c->malformed[v->malformed_layer]++;
	if (v->tcp_flags > 0)
		add_tcp_flags(c, v->tcp_flags, 1, 1, 0);
}

/*
 * A GSO skb (TSO/GSO at egress, GRO at ingress) stands for segs wire frames, each carrying the
 * headers again: it is counted as those segments. Each segment but the last carries gso_size bytes
 * of payload. Which headers repeat: wire_len is the kernel's own wire length of the skb where it
 * has one (skb->wire_len at TC egress: every segment's headers, a tunnel's inner ones included,
 * as qdisc_pkt_len_init() works them out); elsewhere it is at most len, and the headers are those
 * the classifier read, up to the end of the transport header. A skb from an untrusted source
 * (SKB_GSO_DODGY: a VM's virtio-net header, a packet socket) has gso_segs 0 until it is split:
 * its segments are worked out from the payload, as the kernel does. TCP flags follow the
 * kernel's segmentation: FIN and PSH on the last segment, CWR on the first, SYN and RST never on a
 * GSO skb; the other flags on every segment.
 *
 * A global function: the verifier checks it once, on its own, rather than once for every verdict
 * the classifier can reach, so it proves nothing from the caller: the pointers may be NULL and the
 * indices anything, as far as it knows.
 */
__noinline int count_gso_verdict(struct carnx_counters *c, const struct frame_verdict *vp,
				 __u64 len, const struct gso_skb *gso)
{
	const int once = FLAG(FIN) | FLAG(SYN) | FLAG(RST) | FLAG(PSH) | FLAG(CWR);
	struct frame_verdict v;
	__u64 headers, last;
	__u32 segs, gso_size;

	if (!c || !vp || !gso)
		return 0;
	v = *vp;
	/* No-ops for the verdicts the classifier makes: they let the verifier prove every index in
	 * range. */
	if ((__u32)v.cls >= CARNX_CLASS_COUNT)
		v.cls = CARNX_CLASS_OTHER;
	if ((__u32)v.malformed_layer >= CARNX_LAYER_COUNT)
		v.malformed_layer = NOT_MALFORMED;
	headers = v.headers;
	segs = gso->segs;
	gso_size = gso->gso_size;
	if (gso_size && !segs && v.headers && headers < len)
		segs = (len - headers + gso_size - 1) / gso_size;
	/* The headers every segment repeats: the kernel's figure where it has one (segs >= 2 there). */
	if (segs >= 2 && gso->wire_len > len)
		headers = (gso->wire_len - len) / (segs - 1);
	/* Without a transport header to repeat, or with sizes that do not add up, the skb is
	 * counted as the one frame it is. */
	if (segs < 2 || !gso_size || !v.headers || headers >= len ||
	    len - headers <= (__u64)(segs - 1) * gso_size) {
		segs = 1;
		headers = 0;
		gso_size = 0;
	}
	/* The last segment: the headers and what the others did not carry (the frame, when one). */
	last = len - (__u64)(segs - 1) * gso_size;

	c->packets[v.cls] += segs;
	c->bytes[v.cls] += len + (__u64)(segs - 1) * headers;
	if (segs > 1)
		c->size_buckets[size_bucket(headers + gso_size)] += segs - 1;
	c->size_buckets[size_bucket(last)]++;
	if (v.vlan_tags)
		c->vlan_packets += segs;
	/* Only a frame counted as one has a malformed layer: a verdict with headers has none. */
	if (v.malformed_layer != NOT_MALFORMED)
		c->malformed[v.malformed_layer]++;
	if (v.tcp_flags > 0)
		add_tcp_flags(c, v.tcp_flags, segs, 1, once);
	return 0;
}

/* The frame's verdict is known: count it (a GSO skb's: keep it for count_gso_verdict()). */
static __always_inline void settle(struct frame *f, int cls, int malformed_layer, int tcp_flags,
				   __u64 headers)
{
	struct frame_verdict v = {
		.cls = cls,
		.malformed_layer = malformed_layer,
		.tcp_flags = tcp_flags,
		.vlan_tags = f->vlan_tags,
		.headers = headers,
	};

	if (f->out)
		*f->out = v;
	else
		count_verdict(f->c, &v, f->len);
}

/* A transport header of fixed length hdr_len at pos (UDP, ICMP, ICMPv6): it must fit. */
static __always_inline void settle_fixed_l4(struct frame *f, void *pos, void *data_end, int cls,
					    int hdr_len)
{
	if (pos + hdr_len > data_end)
		return settle(f, cls, CARNX_LAYER_L4, NO_TCP_FLAGS, 0);
	settle(f, cls, NOT_MALFORMED, NO_TCP_FLAGS, pos + hdr_len - f->data);
}

/* TCP at pos: the fixed header must fit and its data offset be at least five words; the options
 * need not be in the frame. */
static __always_inline void settle_tcp(struct frame *f, void *pos, void *data_end, int cls)
{
	__u8 *tcp = pos;
	__u8 doff;

	if (pos + TCP_HEADER_LEN > data_end)
		return settle(f, cls, CARNX_LAYER_L4, NO_TCP_FLAGS, 0);
	/* Byte 12: the data offset in its top four bits; byte 13: the flags, FIN in bit 0 up to
	 * CWR in bit 7, the order of enum carnx_tcp_flag. */
	doff = tcp[12] >> 4;
	if (doff < 5)
		return settle(f, cls, CARNX_LAYER_L4, NO_TCP_FLAGS, 0);
	settle(f, cls, NOT_MALFORMED, tcp[13], pos + doff * 4 - f->data);
}

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

/* IPv4 at pos, honouring IHL. A fragment other than the first carries no transport header. */
static __always_inline void classify_ipv4(struct frame *f, void *pos, void *data_end)
{
	struct iphdr *iph = pos;
	__u8 version_ihl;

	if ((void *)(iph + 1) > data_end)
		return settle(f, CARNX_CLASS_IPV4_NONE, CARNX_LAYER_L3, NO_TCP_FLAGS, 0);
	/* Version 4 and a header of at least five words: the first byte is 0x45 to 0x4f. Nearly
	 * every header is 0x45, five words and no options, which the check above already fits. */
	version_ihl = *(__u8 *)iph;
	if (likely(version_ihl == 0x45)) {
		pos = iph + 1;
	} else {
		if ((__u8)(version_ihl - 0x45) > 0x4f - 0x45)
			return settle(f, CARNX_CLASS_IPV4_NONE, CARNX_LAYER_L3, NO_TCP_FLAGS, 0);
		pos += (version_ihl & 0xf) * 4;
		if (pos > data_end)
			return settle(f, CARNX_CLASS_IPV4_NONE, CARNX_LAYER_L3, NO_TCP_FLAGS, 0);
	}
	if (unlikely(iph->frag_off & bpf_htons(0x1fff)))
		return settle(f, ipv4_class(iph->protocol), NOT_MALFORMED, NO_TCP_FLAGS, 0);
	/* The expectation orders the compares: TCP, the most frequent, first. */
	switch (__builtin_expect(iph->protocol, IPPROTO_TCP)) {
	case IPPROTO_TCP:
		return settle_tcp(f, pos, data_end, CARNX_CLASS_IPV4_TCP);
	case IPPROTO_UDP:
		return settle_fixed_l4(f, pos, data_end, CARNX_CLASS_IPV4_UDP,
				       sizeof(struct udphdr));
	case IPPROTO_ICMP:
		return settle_fixed_l4(f, pos, data_end, CARNX_CLASS_IPV4_ICMP, ICMP_HEADER_LEN);
	default:
		return settle(f, CARNX_CLASS_IPV4_OTHER, NOT_MALFORMED, NO_TCP_FLAGS, 0);
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

/* What follows IPv6 and its extension headers at pos: next_header is the value that ended the
 * walk, -2 when the chain was longer than we walk. */
static __always_inline void settle_ipv6_transport(struct frame *f, void *pos, void *data_end,
						  int next_header)
{
	switch (next_header) {
	case IPPROTO_TCP:
		return settle_tcp(f, pos, data_end, CARNX_CLASS_IPV6_TCP);
	case IPPROTO_UDP:
		return settle_fixed_l4(f, pos, data_end, CARNX_CLASS_IPV6_UDP,
				       sizeof(struct udphdr));
	case IPPROTO_ICMPV6:
		return settle_fixed_l4(f, pos, data_end, CARNX_CLASS_IPV6_ICMPV6,
				       ICMPV6_HEADER_LEN);
	default:
		return settle(f, ipv6_class(next_header), NOT_MALFORMED, NO_TCP_FLAGS, 0);
	}
}

/* IPv6 at pos, and its hop-by-hop, routing, destination-options and fragment headers. */
static __always_inline void classify_ipv6(struct frame *f, void *pos, void *data_end)
{
	struct ipv6hdr *ip6h = pos;
	int next_header, non_first_fragment = 0;

	if ((void *)(ip6h + 1) > data_end)
		return settle(f, CARNX_CLASS_IPV6_NONE, CARNX_LAYER_L3, NO_TCP_FLAGS, 0);
	if ((*(__u8 *)ip6h & 0xf0) != 0x60)
		return settle(f, CARNX_CLASS_IPV6_NONE, CARNX_LAYER_L3, NO_TCP_FLAGS, 0);
	pos = ip6h + 1;
	next_header = ip6h->nexthdr;
	/* The usual transports first: no extension header test on the way to them. */
	if (likely(next_header == IPPROTO_TCP || next_header == IPPROTO_UDP ||
		   next_header == IPPROTO_ICMPV6 || !ipv6_is_walked_ext(next_header)))
		return settle_ipv6_transport(f, pos, data_end, next_header);
	next_header = walk_ipv6_ext(&pos, data_end, next_header, &non_first_fragment);
	if (next_header == -1)
		return settle(f, CARNX_CLASS_IPV6_NONE, CARNX_LAYER_L3, NO_TCP_FLAGS, 0);
	if (non_first_fragment)
		return settle(f, ipv6_class(next_header), NOT_MALFORMED, NO_TCP_FLAGS, 0);
	settle_ipv6_transport(f, pos, data_end, next_header);
}

/* ARP at pos: the fixed header and both address pairs must fit. */
static __always_inline void classify_arp(struct frame *f, void *pos, void *data_end)
{
	struct arp_fixed *arp = pos;

	if ((void *)(arp + 1) > data_end ||
	    pos + sizeof(*arp) + 2 * (arp->hw_len + arp->proto_len) > data_end)
		return settle(f, CARNX_CLASS_ARP, CARNX_LAYER_L3, NO_TCP_FLAGS, 0);
	settle(f, CARNX_CLASS_ARP, NOT_MALFORMED, NO_TCP_FLAGS, 0);
}

/* Classifies the frame from data to data_end and counts it: its class, the layer whose header
 * did not fit or was invalid, its TCP flags and whether it carries VLAN tags. */
static __always_inline void classify_count(struct frame *f, void *data_end)
{
	void *pos = f->data + sizeof(struct ethhdr);
	int proto, tags;

	if (pos > data_end)
		return settle(f, CARNX_CLASS_OTHER, CARNX_LAYER_L2, NO_TCP_FLAGS, 0);
	proto = eth_proto(f->data);
	/* Most frames are untagged: test once here instead of walking the tag loop; IPv4 first,
	 * which takes the most frequent frames to their parser with a single compare. */
	if (unlikely(proto != bpf_htons(ETH_P_IP) && proto_is_vlan(proto))) {
		proto = parse_vlan_tags(&pos, data_end, proto, &tags);
		/* One frame at XDP: its tags are counted here, once, rather than tested for wherever
		 * the classifier settles. A GSO skb needs its segment count first. */
		if (f->out)
			f->vlan_tags = tags;
		else if (tags)
			f->c->vlan_packets++;
		if (proto < 0)
			return settle(f, CARNX_CLASS_OTHER, CARNX_LAYER_L2, NO_TCP_FLAGS, 0);
	}
	if (likely(proto == bpf_htons(ETH_P_IP)))
		return classify_ipv4(f, pos, data_end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return classify_ipv6(f, pos, data_end);
	if (proto == bpf_htons(ETH_P_ARP))
		return classify_arp(f, pos, data_end);
	settle(f, CARNX_CLASS_OTHER, NOT_MALFORMED, NO_TCP_FLAGS, 0);
}

/* Adds the one frame from data to data_end, of length len, to *c. */
static __always_inline void count_frame(struct carnx_counters *c, void *data, void *data_end,
					__u64 len)
{
	struct frame f = { .c = c, .data = data, .len = len, .out = NULL, .vlan_tags = 0 };

	/* The size bucket needs nothing but the length: counted here once, not in every place
	 * the classifier settles. */
	c->size_buckets[size_bucket(len)]++;
	classify_count(&f, data_end);
}

/* Adds the GSO skb from data to data_end, of length len, to *c as the segments it stands for (see
 * count_gso_verdict()). Only for a skb with a gso_size: one without is a single frame, for
 * count_frame(). The classifier only keeps the verdict here and the counting follows once: a
 * program verifies this best in a global function of its own, apart from count_frame()'s path. */
static __always_inline void count_gso_frame(struct carnx_counters *c, void *data, void *data_end,
					    __u64 len, const struct gso_skb *gso)
{
	struct frame_verdict v;
	struct frame f = { .c = c, .data = data, .len = len, .out = &v, .vlan_tags = 0 };

	classify_count(&f, data_end);
	count_gso_verdict(c, &v, len, gso);
}

#endif /* CARNX_CLASSIFY_H */
