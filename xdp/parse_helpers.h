/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsers over a cursor: each checks that its header fits before data_end, advances
 * the cursor past it, and returns the next protocol (0 if none), or -1 if it did not fit.
 */
#ifndef CARNX_PARSE_HELPERS_H
#define CARNX_PARSE_HELPERS_H

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define CARNX_MAX_VLAN_TAGS 2
/* Extension headers walked before giving up on finding the transport. Six covers the
 * longest chain RFC 8200 recommends of the kinds we walk; the verifier needs a bound,
 * and its time grows with it (about 17 ms per load at 6, 56 ms at 8 on kernel 6.18),
 * which is paid once per interface at attach. */
#ifndef CARNX_MAX_IPV6_EXT_HEADERS
#define CARNX_MAX_IPV6_EXT_HEADERS 6
#endif

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#define ICMP_HEADER_LEN 8   /* RFC 792: type, code, checksum and four more bytes */
#define ICMPV6_HEADER_LEN 4 /* RFC 4443: type, code, checksum */

struct hdr_cursor {
	void *pos;
};

struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

/* Fixed part of an ARP header (RFC 826), before the variable-length addresses. */
struct arp_fixed {
	__be16 hw_type;
	__be16 proto_type;
	__u8 hw_len;
	__u8 proto_len;
	__be16 op;
};

/* The first two bytes every IPv6 extension header we walk shares. */
struct ipv6_ext_hdr {
	__u8 next_header;
	__u8 hdr_ext_len;
};

struct ipv6_frag_hdr {
	__u8 next_header;
	__u8 reserved;
	__be16 frag_off; /* offset in 8-byte units in the top 13 bits */
	__be32 identification;
};

static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end)
{
	struct ethhdr *eth = nh->pos;

	if ((void *)(eth + 1) > data_end)
		return -1;
	nh->pos = eth + 1;
	/* struct ethhdr is packed, which makes clang load h_proto byte by byte;
	 * XDP packet loads may be unaligned, so read the two bytes at once. */
	return *(__u16 *)((void *)eth + offsetof(struct ethhdr, h_proto)); /* network byte order */
}

static __always_inline int proto_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD);
}

/* Skips up to CARNX_MAX_VLAN_TAGS tags. *tags gets how many were skipped; returns the
 * inner ethertype (network byte order), or -1 if a tag was cut short. */
static __always_inline int parse_vlan_tags(struct hdr_cursor *nh, void *data_end, __u16 h_proto,
					   int *tags)
{
	struct vlan_tag *tag;
	int i;

	*tags = 0;
#pragma unroll
	for (i = 0; i < CARNX_MAX_VLAN_TAGS; i++) {
		if (!proto_is_vlan(h_proto))
			break;
		tag = nh->pos;
		if ((void *)(tag + 1) > data_end)
			return -1;
		h_proto = tag->encapsulated_proto;
		nh->pos = tag + 1;
		*tags = i + 1;
	}
	return h_proto;
}

/* IPv4 honouring IHL. *non_first_fragment is set when the fragment offset is not zero:
 * such a fragment carries no transport header. Returns the protocol number or -1. */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end,
				       int *non_first_fragment)
{
	struct iphdr *iph = nh->pos;
	int hdrsize;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4 || iph->ihl < 5)
		return -1;
	hdrsize = iph->ihl * 4;
	if (nh->pos + hdrsize > data_end)
		return -1;
	*non_first_fragment = (iph->frag_off & bpf_htons(0x1fff)) != 0;
	nh->pos += hdrsize;
	return iph->protocol;
}

/* Hop-by-hop (0), routing (43), fragment (44) and destination options (60) all have
 * codes below 64, so one shift and mask tells whether a header is one we walk. */
#define IPV6_WALKED_EXT_MASK                                                                  \
	((1ULL << IPPROTO_HOPOPTS) | (1ULL << IPPROTO_ROUTING) | (1ULL << IPPROTO_FRAGMENT) | \
	 (1ULL << IPPROTO_DSTOPTS))

static __always_inline int ipv6_is_walked_ext(__u8 next_header)
{
	return next_header < 64 && ((1ULL << next_header) & IPV6_WALKED_EXT_MASK);
}

/* IPv6 and its hop-by-hop, routing, destination-options and fragment headers.
 * Returns the next-header value that ends the walk (for a non-first fragment, the one
 * its fragment header names), -2 when the chain is longer than we walk, or -1 if a
 * header did not fit. */
static __always_inline int parse_ipv6hdr(struct hdr_cursor *nh, void *data_end,
					 int *non_first_fragment)
{
	struct ipv6hdr *ip6h = nh->pos;
	struct ipv6_ext_hdr *ext;
	struct ipv6_frag_hdr *frag;
	__u8 next_header;
	int i, len;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	nh->pos = ip6h + 1;
	next_header = ip6h->nexthdr;

	for (i = 0; i < CARNX_MAX_IPV6_EXT_HEADERS; i++) {
		if (!ipv6_is_walked_ext(next_header))
			return next_header;
		ext = nh->pos;
		if ((void *)(ext + 1) > data_end)
			return -1;
		/* The fragment header is 8 bytes; its second byte is reserved, not a length. */
		len = next_header == IPPROTO_FRAGMENT ? 8 : (ext->hdr_ext_len + 1) * 8;
		if (nh->pos + len > data_end)
			return -1;
		if (next_header == IPPROTO_FRAGMENT) {
			frag = nh->pos;
			if (frag->frag_off & bpf_htons(0xfff8)) {
				*non_first_fragment = 1;
				return frag->next_header;
			}
		}
		next_header = ext->next_header;
		nh->pos += len;
	}
	return ipv6_is_walked_ext(next_header) ? -2 : next_header;
}

/* ARP: the fixed header and both address pairs must fit. Returns 0 or -1. */
static __always_inline int parse_arp(struct hdr_cursor *nh, void *data_end)
{
	struct arp_fixed *arp = nh->pos;

	if ((void *)(arp + 1) > data_end)
		return -1;
	if (nh->pos + sizeof(*arp) + 2 * (arp->hw_len + arp->proto_len) > data_end)
		return -1;
	return 0;
}

/* TCP: the fixed header must fit and its data offset be at least five words; the options
 * need not be in the frame, so the cursor moves past the fixed header only. *flags gets the
 * flags in header order (FIN bit 0 ... CWR bit 7). Returns 0 or -1. */
static __always_inline int parse_tcphdr(struct hdr_cursor *nh, void *data_end, int *flags,
					int *hdr_len)
{
	struct tcphdr *tcph = nh->pos;

	if ((void *)(tcph + 1) > data_end)
		return -1;
	if (tcph->doff < 5)
		return -1;
	*flags = tcph->fin | tcph->syn << 1 | tcph->rst << 2 | tcph->psh << 3 | tcph->ack << 4 |
		 tcph->urg << 5 | tcph->ece << 6 | tcph->cwr << 7;
	*hdr_len = tcph->doff * 4; /* options included: what every segment of a GSO skb repeats */
	nh->pos = tcph + 1;
	return 0;
}

/* The transport header of a first (or only) fragment after IPv4, or IPv6 when ipv6 is set:
 * TCP (see parse_tcphdr), UDP, ICMP after IPv4 and ICMPv6 after IPv6 must fit their fixed
 * part; any other protocol is not looked at. Returns 0, or -1 if the header did not fit or
 * was invalid. *hdr_len is set to the header's length (TCP: with options) when it was read. */
static __always_inline int parse_transport(struct hdr_cursor *nh, void *data_end, int ipv6,
					   int proto, int *tcp_flags, int *hdr_len)
{
	int len;

	switch (proto) {
	case IPPROTO_TCP:
		return parse_tcphdr(nh, data_end, tcp_flags, hdr_len);
	case IPPROTO_UDP:
		len = sizeof(struct udphdr);
		break;
	case IPPROTO_ICMP:
		if (ipv6)
			return 0;
		len = ICMP_HEADER_LEN;
		break;
	case IPPROTO_ICMPV6:
		if (!ipv6)
			return 0;
		len = ICMPV6_HEADER_LEN;
		break;
	default:
		return 0;
	}
	if (nh->pos + len > data_end)
		return -1;
	*hdr_len = len;
	nh->pos += len;
	return 0;
}

#endif /* CARNX_PARSE_HELPERS_H */
