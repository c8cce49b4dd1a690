// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A bare TC program that hands every packet on: the baseline of the TC rows of
 * `npm run bench` (BPF_PROG_TEST_RUN and TCP throughput on a tcx hook).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* What a tcx program returns to hand the packet to the next program (or the stack). */
#define TCX_NEXT -1

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
