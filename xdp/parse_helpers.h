/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The headers carnx reads and the walks that need a loop: VLAN tags and the IPv6 extension header
 * chain. Every read is preceded by a check that it fits before data_end; nothing writes to the
 * frame. carnx_classify.h decides what the frame is.
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
 * and its time grows with it, paid once per interface at attach (at 6 on kernel 6.18:
 * about 7 ms to verify the XDP program and 19 ms the TC one). */
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
#define TCP_HEADER_LEN 20   /* without options */
/* Every extension header we walk is a multiple of 8 bytes, and at least 8 (RFC 8200). */
#define IPV6_EXT_UNIT 8

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

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

/* The first bytes of every IPv6 extension header we walk: the fragment header's second byte
 * is reserved rather than a length, and its offset follows. */
struct ipv6_ext_hdr {
	__u8 next_header;
	__u8 hdr_ext_len; /* in 8-byte units, not counting the first 8 bytes */
	__be16 frag_off;  /* fragment header only: offset in 8-byte units in the top 13 bits */
};

/* The ethertype after the Ethernet header's addresses. struct ethhdr is packed, which makes
 * clang load h_proto byte by byte; XDP packet loads may be unaligned, so read both at once. */
static __always_inline __u16 eth_proto(void *eth)
{
	return *(__u16 *)(eth + offsetof(struct ethhdr, h_proto)); /* network byte order */
}

static __always_inline int proto_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD);
}

/* Skips up to CARNX_MAX_VLAN_TAGS tags starting at *pos, the first of which h_proto announces.
 * *tags gets how many were skipped; returns the inner ethertype (network byte order), or -1
 * if a tag was cut short. */
static __always_inline int parse_vlan_tags(void **pos, void *data_end, __u16 h_proto, int *tags)
{
	struct vlan_tag *tag;
	int i;

	*tags = 0;
#pragma unroll
	for (i = 0; i < CARNX_MAX_VLAN_TAGS; i++) {
		if (!proto_is_vlan(h_proto))
			break;
		tag = *pos;
		if ((void *)(tag + 1) > data_end)
			return -1;
		h_proto = tag->encapsulated_proto;
		*pos = tag + 1;
		*tags = i + 1;
	}
	return h_proto;
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

/*
 * Walks the hop-by-hop, routing, destination-options and fragment headers from *pos, where the
 * header that next_header (one of them) names starts. Returns the next-header value that ends the
 * walk, with *pos after the last header walked; for a non-first fragment, the one its fragment
 * header names, with *non_first_fragment set. Returns -2 when the chain is longer than we walk,
 * or -1 if a header did not fit. Every header is at least 8 bytes, so one check of 8 bytes covers
 * its first two (and a fragment header whole) before its length is read.
 */
static __always_inline int walk_ipv6_ext(void **pos, void *data_end, __u8 next_header,
					 int *non_first_fragment)
{
	struct ipv6_ext_hdr *ext;
	int i, len;

	for (i = 0; i < CARNX_MAX_IPV6_EXT_HEADERS; i++) {
		ext = *pos;
		if ((void *)ext + IPV6_EXT_UNIT > data_end)
			return -1;
		if (next_header == IPPROTO_FRAGMENT) {
			if (ext->frag_off & bpf_htons(0xfff8)) {
				*non_first_fragment = 1;
				return ext->next_header;
			}
			len = IPV6_EXT_UNIT;
		} else {
			len = (ext->hdr_ext_len + 1) * IPV6_EXT_UNIT;
			if (*pos + len > data_end)
				return -1;
		}
		next_header = ext->next_header;
		*pos += len;
		if (!ipv6_is_walked_ext(next_header))
			return next_header;
	}
	return -2;
}

#endif /* CARNX_PARSE_HELPERS_H */
