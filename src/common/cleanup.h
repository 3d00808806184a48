/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Scope-bound cleanup, the way systemd, crun and bubblewrap write it: an owning local carries an
 * attribute that frees it when it goes out of scope, and TAKE_PTR()/TAKE_FD() hand ownership on.
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_     __attribute__((noreturn))
#define _unused_       __attribute__((unused))
#define _warn_unused_  __attribute__((warn_unused_result))
#define ELEMENTSOF(x)  (sizeof(x) / sizeof((x)[0]))

static inline void freep(void *p)
{
        free(*(void **) p);
}

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f)
{
        if (*f)
                (void) fclose(*f);
}

static inline void closedirp(DIR **d)
{
        if (*d)
                (void) closedir(*d);
}

#define _cleanup_free_   _cleanup_(freep)
#define _cleanup_close_  _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Declares <func>p(), a cleanup helper for a pointer type whose free function accepts NULL. */
#define DEFINE_FREE_FUNC(type, func)        \
        static inline void func##p(type *p) \
        {                                   \
                if (*p)                     \
                        (void) func(*p);    \
        }

#define TAKE_PTR(p)                         \
        ({                                  \
                __typeof__(p) _taken = (p); \
                (p) = NULL;                 \
                _taken;                     \
        })

#define TAKE_FD(fd)                \
        ({                         \
                int _taken = (fd); \
                (fd) = -EBADF;     \
                _taken;            \
        })

/* Closes fd if it is open and returns -EBADF, so that `fd = safe_close(fd);` resets it. */
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}
