/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The seccomp policy, compiled with libseccomp. Used at build time (gen-seccomp writes the
 * program into the binary) and by the tests; a sandbox never links libseccomp.
 */

#include <linux/filter.h>

/*
 * Compiles the policy (described in seccomp.h) and checks the compiled program against a table of
 * expected verdicts. Returns 0 and *ret (ret->filter is heap memory the caller frees), or -ENOMEM,
 * an error from libseccomp or the memfd it is exported to, or -EPROTO if the program libseccomp
 * produced does not implement the policy.
 */
int seccomp_policy_compile(struct sock_fprog *ret);

/* Runs prog through a BPF interpreter against the expected verdicts: 0 or -EPROTO. */
int seccomp_policy_check(const struct sock_fprog *prog);
