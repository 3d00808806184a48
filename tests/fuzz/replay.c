/* SPDX-License-Identifier: MIT */

/*
 * Replays corpora through a fuzz target without libFuzzer (SQLite's fuzzcheck, in small): each
 * argument is a file or a directory whose regular files, in name order, are fed to
 * LLVMFuzzerTestOneInput() one at a time. A crash, a sanitizer report or an abort() of the
 * target fails the run. This is how the corpora replay in the ordinary `meson test`.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "common/cleanup.h"
#include "fuzz.h"

/* Larger than any body a target accepts, so that their size checks are replayed too. */
#define REPLAY_MAX_INPUT ((size_t) 64 << 20)

static int replay_file(int dirfd, const char *path, size_t *count)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t done = 0;

        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return 0;
        if ((uint64_t) st.st_size > REPLAY_MAX_INPUT)
                return -EFBIG;
        /* libFuzzer hands over exactly size bytes: so do we (+1 so that malloc(0) is not asked). */
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + done, (size_t) st.st_size - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        (void) LLVMFuzzerTestOneInput(buf, done);
        (*count)++;
        return 0;
}

static int replay_dir(const char *path, size_t *count)
{
        _cleanup_close_ int dfd = -EBADF;
        struct dirent **names = NULL;
        int n, r = 0;

        dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        n = scandir(path, &names, NULL, alphasort);
        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                if (r >= 0 && names[i]->d_name[0] != '.') {
                        r = replay_file(dfd, names[i]->d_name, count);
                        if (r < 0)
                                fprintf(stderr, "replay: %s/%s: %s\n", path, names[i]->d_name,
                                        strerror(-r));
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char *argv[])
{
        size_t count = 0;
        int r;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s DIR|FILE...\n", argv[0]);
                return EXIT_FAILURE;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                        return EXIT_FAILURE;
                }
                r = S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count)
                                        : replay_file(AT_FDCWD, argv[i], &count);
                if (r < 0) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        if (count == 0) {
                fprintf(stderr, "replay: no inputs\n");
                return EXIT_FAILURE;
        }
        printf("replayed %zu inputs\n", count);
        return EXIT_SUCCESS;
}
