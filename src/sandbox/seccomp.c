/* SPDX-License-Identifier: MIT */
/*
 * The seccomp filter at run time: the program compiled from seccomp-policy.c at build time and
 * embedded in the binary, copied out and loaded with one prctl(). Compiling it with libseccomp
 * and checking it costs milliseconds a sandbox should not pay.
 */
#include "seccomp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/seccomp.h>
#include <sys/prctl.h>

int seccomp_program_build(struct seccomp_program **ret)
{
        struct seccomp_program *p;

        if (seccomp_builtin_len == 0)
                return -EPROTO;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->prog.filter = calloc(seccomp_builtin_len, sizeof(struct sock_filter));
        if (!p->prog.filter) {
                free(p);
                return -ENOMEM;
        }
        memcpy(p->prog.filter, seccomp_builtin_filter,
               seccomp_builtin_len * sizeof(struct sock_filter));
        p->prog.len = seccomp_builtin_len;
        *ret = p;
        return 0;
}

struct seccomp_program *seccomp_program_free(struct seccomp_program *p)
{
        if (!p)
                return NULL;
        free(p->prog.filter);
        free(p);
        return NULL;
}

int seccomp_program_load(const struct seccomp_program *p)
{
        /* No libc wrapper that could allocate; prctl() reads the struct and copies the program. */
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (unsigned long) &p->prog, 0UL, 0UL) < 0)
                return -errno;
        return 0;
}
