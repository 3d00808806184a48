/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/stat.h>

#include "blob/blob.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "unit.h"

/*
 * Every test gets a fresh directory under $TMPDIR; the store is DIR/blobs, created by the test.
 * The files are real: damage is done to them with ordinary syscalls, as a disk or an intruder
 * would.
 */

#define ABC_SHA256   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct fixture {
        char dir[PATH_MAX / 4];
        char store[PATH_MAX / 2];
        struct blob_store *b;
};

static int setup(void **state)
{
        const char *tmp = getenv("TMPDIR");
        struct fixture *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        if (snprintf(f->dir, sizeof(f->dir), "%s/test-blob-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
                    (int) sizeof(f->dir) ||
            !mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        (void) snprintf(f->store, sizeof(f->store), "%s/blobs", f->dir);
        if (blob_store_open(f->store, &f->b) < 0) {
                (void) rmdir(f->dir);
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        return remove(path) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        blob_store_free(f->b);
        (void) nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* out[PATH_MAX] = the store's path for id (or a name in its fan-out directory). */
static void blob_path(const struct fixture *f, const char *id, char *out)
{
        int n = snprintf(out, PATH_MAX, "%s/%.2s/%s", f->store, id, id);

        assert_true(n > 0 && n < PATH_MAX);
}

static void join(char *out, const char *dir, const char *name)
{
        int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

        assert_true(n > 0 && n < PATH_MAX);
}

/* The names in dir other than "." and "..", as one sorted, comma-separated string. */
static char *list_dir(const char *dir)
{
        struct dirent **names = NULL;
        char *out = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&out, &len);
        int n;

        assert_non_null(m);
        n = scandir(dir, &names, NULL, alphasort);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0)
                        fprintf(m, "%s%s", ftell(m) > 0 ? "," : "", names[i]->d_name);
                free(names[i]);
        }
        free(names);
        assert_int_equal(fclose(m), 0);
        return out;
}

static unsigned count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        (void) closedir(d);
        return n;
}

static void write_file(const char *path, const void *data, size_t len)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write_full(fd, data, len), 0);
}

static void pattern(char *buf, size_t len, unsigned seed)
{
        uint32_t x = seed * 2654435761u + 1;

        for (size_t i = 0; i < len; i++) {
                x = x * 1103515245u + 12345u;
                buf[i] = (char) (x >> 16);
        }
}

/* A memfd holding data, positioned at offset pos. */
static int memfd_with(const void *data, size_t len, off_t pos)
{
        int fd = memfd_create("blob-test", MFD_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(write_full(fd, data, len), 0);
        assert_int_equal(lseek(fd, pos, SEEK_SET), pos);
        return fd;
}

static void test_store_dir(void **state)
{
        struct fixture *f = *state;
        _cleanup_(blob_store_freep) struct blob_store *b = NULL;
        char path[PATH_MAX], id[BLOB_HEX_SIZE];
        struct stat st;
        mode_t old;

        /* Created 0700 whatever the umask. */
        assert_int_equal(stat(f->store, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        join(path, f->dir, "lax");
        old = umask(0);
        assert_int_equal(blob_store_open(path, &b), 0);
        assert_int_equal(blob_put(b, "abc", 3, id), 0);
        (void) umask(old);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        join(path, f->dir, "lax/ba");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        join(path, f->dir, "lax/ba/" ABC_SHA256);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0400);
        b = blob_store_free(b);
        assert_null(b);

        /* Opening an existing store; a missing parent; nothing. */
        assert_int_equal(blob_store_open(f->store, &b), 0);
        b = blob_store_free(b);
        join(path, f->dir, "no/such");
        assert_int_equal(blob_store_open(path, &b), -ENOENT);
        assert_int_equal(blob_store_open(NULL, &b), -EINVAL);
        assert_int_equal(blob_store_open("", &b), -EINVAL);
        assert_null(b);
        assert_null(blob_store_free(NULL));
}

static void test_digest(void **state)
{
        char id[BLOB_HEX_SIZE];

        blob_digest("abc", 3, id);
        assert_string_equal(id, ABC_SHA256);
        blob_digest("", 0, id);
        assert_string_equal(id, EMPTY_SHA256);
        blob_digest(NULL, 0, id);
        assert_string_equal(id, EMPTY_SHA256);
        assert_true(blob_id_valid(id));
}

static void test_round_trip(void **state)
{
        struct fixture *f = *state;
        char id[BLOB_HEX_SIZE], buf[8], path[PATH_MAX];
        _cleanup_free_ char *s = NULL;
        _cleanup_close_ int fd = -EBADF;
        int flags;

        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        assert_string_equal(id, ABC_SHA256);
        blob_path(f, id, path);
        assert_int_equal(access(path, F_OK), 0);

        assert_int_equal(blob_open(f->b, id, 3, &fd), 0);
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
        flags = fcntl(fd, F_GETFL);
        assert_true(flags >= 0);
        assert_int_equal(flags & O_ACCMODE, O_RDONLY);
        assert_int_equal(flags & O_NONBLOCK, 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(read_full(fd, buf, sizeof(buf)), 3);
        assert_memory_equal(buf, "abc", 3);

        assert_int_equal(blob_read(f->b, id, 3, 3, &s), 0);
        assert_string_equal(s, "abc");
        free(TAKE_PTR(s));
        assert_int_equal(blob_read(f->b, id, 3, 2, &s), -EFBIG);
        assert_null(s);

        /* The empty blob is a blob. */
        assert_int_equal(blob_put(f->b, "", 0, id), 0);
        assert_string_equal(id, EMPTY_SHA256);
        assert_int_equal(blob_read(f->b, id, 0, 0, &s), 0);
        assert_string_equal(s, "");
        fd = safe_close(fd);
        assert_int_equal(blob_open(f->b, id, 0, &fd), 0);
        assert_int_equal(read_full(fd, buf, sizeof(buf)), 0);

        assert_int_equal(blob_put(f->b, NULL, 1, id), -EINVAL);
}

static void test_large_round_trip(void **state)
{
        struct fixture *f = *state;
        const size_t len = 3 * 65536 + 123;
        _cleanup_free_ char *data = malloc(len), *back = NULL;
        char id[BLOB_HEX_SIZE], want[BLOB_HEX_SIZE];

        assert_non_null(data);
        pattern(data, len, 1);
        blob_digest(data, len, want);
        assert_int_equal(blob_put(f->b, data, len, id), 0);
        assert_string_equal(id, want);
        assert_int_equal(blob_read(f->b, id, len, len, &back), 0);
        assert_memory_equal(back, data, len);
        assert_int_equal(back[len], '\0');
}

static void test_idempotent_put(void **state)
{
        struct fixture *f = *state;
        char id[BLOB_HEX_SIZE], id2[BLOB_HEX_SIZE], path[PATH_MAX];
        _cleanup_free_ char *top = NULL, *sub = NULL;
        _cleanup_close_ int mfd = -EBADF;
        struct stat a, b;
        uint64_t size = 0;

        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        blob_path(f, id, path);
        assert_int_equal(stat(path, &a), 0);
        assert_int_equal(blob_put(f->b, "abc", 3, id2), 0);
        assert_string_equal(id2, ABC_SHA256);
        mfd = memfd_with("abc", 3, 0);
        assert_int_equal(blob_put_fd(f->b, mfd, 3, &size, id2), 0);
        assert_string_equal(id2, ABC_SHA256);
        assert_int_equal(size, 3);

        /* Not rewritten: the same file; and nothing left behind. */
        assert_int_equal(stat(path, &b), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        top = list_dir(f->store);
        assert_string_equal(top, "ba");
        join(path, f->store, "ba");
        sub = list_dir(path);
        assert_string_equal(sub, ABC_SHA256);
}

static void test_put_fd(void **state)
{
        struct fixture *f = *state;
        const size_t len = 200017;
        _cleanup_free_ char *data = malloc(len), *back = NULL, *top = NULL;
        _cleanup_close_ int fd = -EBADF, efd = -EBADF;
        char id[BLOB_HEX_SIZE], want[BLOB_HEX_SIZE], path[PATH_MAX];
        uint64_t size = 0;
        int pipefd[2];

        assert_non_null(data);
        pattern(data, len, 2);
        blob_digest(data, len, want);

        /* From offset 0, whatever the fd's position, which stays where it was. */
        fd = memfd_with(data, len, 1000);
        assert_int_equal(blob_put_fd(f->b, fd, len, &size, id), 0);
        assert_int_equal(size, len);
        assert_string_equal(id, want);
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 1000);
        assert_int_equal(blob_read(f->b, id, len, len, &back), 0);
        assert_memory_equal(back, data, len);

        /* One byte over max: -EFBIG, nothing stored, nothing left behind. */
        assert_int_equal(blob_remove(f->b, id), 0);
        size = 7;
        assert_int_equal(blob_put_fd(f->b, fd, len - 1, &size, id), -EFBIG);
        assert_int_equal(size, 7);
        assert_int_equal(blob_open(f->b, want, len, &efd), -ENOENT);
        top = list_dir(f->store);
        assert_true(top[0] != '.' && !strstr(top, ",."));
        blob_path(f, want, path);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(blob_put_fd(f->b, fd, 0, &size, id), -EFBIG);

        /* Empty content within max 0. */
        fd = safe_close(fd);
        fd = memfd_with("", 0, 0);
        assert_int_equal(blob_put_fd(f->b, fd, 0, &size, id), 0);
        assert_int_equal(size, 0);
        assert_string_equal(id, EMPTY_SHA256);

        /* Content a multiple of the chunk size, max exactly its size. */
        fd = safe_close(fd);
        fd = memfd_with(data, 131072, 0);
        blob_digest(data, 131072, want);
        assert_int_equal(blob_put_fd(f->b, fd, 131072, NULL, id), 0);
        assert_string_equal(id, want);

        /* Not something pread() can read. */
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        assert_int_equal(write_full(pipefd[1], "abc", 3), 0);
        assert_int_equal(blob_put_fd(f->b, pipefd[0], 100, &size, id), -ESPIPE);
        (void) close(pipefd[0]);
        (void) close(pipefd[1]);
        assert_int_equal(blob_put_fd(f->b, -1, 100, &size, id), -EBADF);
}

static void test_flipped_byte(void **state)
{
        struct fixture *f = *state;
        const size_t len = 100000;
        _cleanup_free_ char *data = malloc(len), *s = NULL;
        char id[BLOB_HEX_SIZE], path[PATH_MAX], c;
        int fd = -EBADF;

        assert_non_null(data);
        pattern(data, len, 3);
        assert_int_equal(blob_put(f->b, data, len, id), 0);
        blob_path(f, id, path);

        {
                _cleanup_close_ int raw = -EBADF;

                assert_int_equal(chmod(path, 0600), 0);
                raw = open(path, O_RDWR | O_CLOEXEC);
                assert_true(raw >= 0);
                c = (char) (data[70000] ^ 0x01);
                assert_int_equal(pwrite(raw, &c, 1, 70000), 1);
        }
        assert_int_equal(blob_open(f->b, id, len, &fd), -EBADMSG);
        assert_int_equal(fd, -EBADF);
        assert_int_equal(blob_read(f->b, id, len, len, &s), -EBADMSG);
        assert_null(s);

        /* Storing it again repairs it. */
        assert_int_equal(blob_put(f->b, data, len, id), 0);
        assert_int_equal(blob_read(f->b, id, len, len, &s), 0);
        assert_memory_equal(s, data, len);
}

static void test_truncated_and_grown(void **state)
{
        struct fixture *f = *state;
        char id[BLOB_HEX_SIZE], path[PATH_MAX];
        _cleanup_free_ char *s = NULL;
        int fd = -EBADF;

        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        blob_path(f, id, path);
        assert_int_equal(chmod(path, 0600), 0); /* blobs are 0400; root or not */
        assert_int_equal(truncate(path, 2), 0);
        assert_int_equal(blob_open(f->b, id, 3, &fd), -EBADMSG);
        assert_int_equal(blob_open(f->b, id, 2, &fd), -EBADMSG);
        assert_int_equal(blob_read(f->b, id, 3, 100, &s), -EBADMSG);
        assert_int_equal(truncate(path, 0), 0);
        assert_int_equal(blob_open(f->b, id, 0, &fd), -EBADMSG);

        write_file(path, "abcd", 4);
        assert_int_equal(blob_open(f->b, id, 3, &fd), -EBADMSG);
        assert_int_equal(blob_open(f->b, id, 4, &fd), -EBADMSG);
        assert_int_equal(fd, -EBADF);
        assert_null(s);
}

static void test_wrong_size(void **state)
{
        struct fixture *f = *state;
        char id[BLOB_HEX_SIZE];
        _cleanup_free_ char *s = NULL;
        int fd = -EBADF;

        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        assert_int_equal(blob_open(f->b, id, 4, &fd), -EBADMSG);
        assert_int_equal(blob_open(f->b, id, 2, &fd), -EBADMSG);
        assert_int_equal(blob_open(f->b, id, 0, &fd), -EBADMSG);
        assert_int_equal(blob_open(f->b, id, UINT64_MAX, &fd), -EBADMSG);
        assert_int_equal(blob_read(f->b, id, 4, 100, &s), -EBADMSG);
        assert_int_equal(fd, -EBADF);
        assert_null(s);
}

static void test_missing(void **state)
{
        struct fixture *f = *state;
        char id[BLOB_HEX_SIZE], other[BLOB_HEX_SIZE], path[PATH_MAX];
        _cleanup_free_ char *s = NULL;
        int fd = -EBADF;

        blob_digest("abd", 3, other);
        /* No fan-out directory yet. */
        assert_int_equal(blob_open(f->b, other, 3, &fd), -ENOENT);
        assert_int_equal(blob_read(f->b, other, 3, 3, &s), -ENOENT);
        assert_int_equal(blob_remove(f->b, other), -ENOENT);

        /* The directory, not the file. */
        join(path, f->store, "a5");
        assert_int_equal(mkdir(path, 0700), 0);
        memcpy(other, "a5", 2);
        assert_int_equal(blob_open(f->b, other, 3, &fd), -ENOENT);
        assert_int_equal(blob_remove(f->b, other), -ENOENT);

        /* Removed. */
        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        assert_int_equal(blob_remove(f->b, id), 0);
        assert_int_equal(blob_open(f->b, id, 3, &fd), -ENOENT);
        assert_int_equal(blob_remove(f->b, id), -ENOENT);
        assert_int_equal(fd, -EBADF);
        assert_null(s);
}

static void test_malformed_ids(void **state)
{
        struct fixture *f = *state;
        const char *bad[] = {
                "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                "Ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
                "../7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "ba/816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                " a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "",
                "abc",
        };
        char id[BLOB_HEX_SIZE];
        _cleanup_free_ char *s = NULL;
        int fd = -EBADF;

        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        assert_true(blob_id_valid(ABC_SHA256));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_false(blob_id_valid(bad[i]));
                assert_int_equal(blob_open(f->b, bad[i], 3, &fd), -EINVAL);
                assert_int_equal(blob_read(f->b, bad[i], 3, 3, &s), -EINVAL);
                assert_int_equal(blob_remove(f->b, bad[i]), -EINVAL);
        }
        assert_false(blob_id_valid(NULL));
        assert_int_equal(blob_open(f->b, NULL, 3, &fd), -EINVAL);
        assert_int_equal(fd, -EBADF);
        assert_null(s);
        /* Untouched. */
        assert_int_equal(blob_read(f->b, id, 3, 3, &s), 0);
}

/*
 * Something else at a blob's name is a damaged blob: -EBADMSG, without following it (the symlink
 * points at the right content, so following it would succeed) and without blocking (a FIFO).
 */
static void test_planted(void **state)
{
        struct fixture *f = *state;
        char id[BLOB_HEX_SIZE], path[PATH_MAX], outside[PATH_MAX], sub[PATH_MAX];
        _cleanup_free_ char *s = NULL;
        int fd = -EBADF;
        struct stat st;

        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        blob_path(f, id, path);
        join(outside, f->dir, "outside");
        write_file(outside, "abc", 3);

        assert_int_equal(unlink(path), 0);
        assert_int_equal(symlink(outside, path), 0);
        assert_int_equal(blob_open(f->b, id, 3, &fd), -EBADMSG);
        assert_int_equal(blob_read(f->b, id, 3, 3, &s), -EBADMSG);

        /* A put replaces the link itself, and writes nothing through it. */
        assert_int_equal(chmod(outside, 0400), 0);
        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(lstat(outside, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0400);
        assert_int_equal(blob_read(f->b, id, 3, 3, &s), 0);
        free(TAKE_PTR(s));

        /* A FIFO, a directory. */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(blob_open(f->b, id, 3, &fd), -EBADMSG);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkdir(path, 0700), 0);
        assert_int_equal(blob_open(f->b, id, 3, &fd), -EBADMSG);
        assert_int_equal(rmdir(path), 0);

        /* A symlinked fan-out directory, holding the right file: not followed either. */
        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        join(sub, f->store, "ba");
        join(outside, f->dir, "outside-dir");
        assert_int_equal(rename(sub, outside), 0);
        assert_int_equal(symlink(outside, sub), 0);
        assert_int_equal(blob_open(f->b, id, 3, &fd), -EBADMSG);
        assert_int_equal(blob_put(f->b, "abc", 3, id), -EBADMSG);
        assert_int_equal(blob_remove(f->b, id), -EBADMSG);
        join(path, outside, ABC_SHA256);
        assert_int_equal(access(path, F_OK), 0); /* not removed through the link */
        assert_int_equal(fd, -EBADF);
        assert_null(s);
}

struct putter {
        struct blob_store *b;
        const char *data;
        size_t len;
        int r;
        char id[BLOB_HEX_SIZE];
};

static void *put_thread(void *arg)
{
        struct putter *p = arg;

        p->r = blob_put(p->b, p->data, p->len, p->id);
        return NULL;
}

/* Several threads storing the same blob at once: all succeed, one file, no debris. */
static void test_concurrent_puts(void **state)
{
        struct fixture *f = *state;
        const size_t len = 1 << 20;
        _cleanup_free_ char *data = malloc(len), *back = NULL, *top = NULL, *list = NULL;
        char want[BLOB_HEX_SIZE], sub[PATH_MAX];
        struct putter p[6];
        pthread_t t[6];

        assert_non_null(data);
        pattern(data, len, 4);
        blob_digest(data, len, want);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                p[i] = (struct putter){.b = f->b, .data = data, .len = len, .r = 1};
                assert_int_equal(pthread_create(&t[i], NULL, put_thread, &p[i]), 0);
        }
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(p[i].r, 0);
                assert_string_equal(p[i].id, want);
        }
        assert_int_equal(blob_read(f->b, want, len, len, &back), 0);
        assert_memory_equal(back, data, len);
        top = list_dir(f->store);
        assert_int_equal(strlen(top), 2);
        join(sub, f->store, top);
        list = list_dir(sub);
        assert_string_equal(list, want);
}

/* Every path, failing or not, closes what it opened. */
static void test_no_fd_leak(void **state)
{
        struct fixture *f = *state;
        char id[BLOB_HEX_SIZE], path[PATH_MAX];
        _cleanup_free_ char *s = NULL;
        unsigned before = count_fds();
        uint64_t size;
        int fd = -EBADF, mfd;

        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        assert_int_equal(blob_put(f->b, "abc", 3, id), 0);
        assert_int_equal(blob_read(f->b, id, 3, 3, &s), 0);
        assert_int_equal(blob_open(f->b, id, 4, &fd), -EBADMSG);
        assert_int_equal(blob_open(f->b, id, 3, &fd), 0);
        fd = safe_close(fd);
        mfd = memfd_with("hello", 5, 0);
        assert_int_equal(blob_put_fd(f->b, mfd, 4, &size, id), -EFBIG);
        assert_int_equal(blob_put_fd(f->b, mfd, 5, &size, id), 0);
        (void) close(mfd);
        blob_path(f, id, path);
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(truncate(path, 1), 0);
        assert_int_equal(blob_open(f->b, id, 5, &fd), -EBADMSG);
        assert_int_equal(blob_open(f->b, ABC_SHA256 "0", 5, &fd), -EINVAL);
        assert_int_equal(blob_remove(f->b, id), 0);
        assert_int_equal(blob_open(f->b, id, 5, &fd), -ENOENT);
        assert_int_equal(count_fds(), before);
}

/* ---- streamed writing, verified copying ---- */

static void test_writer(void **state)
{
        struct fixture *f = *state;
        const size_t len = 3 * 65536 + 17;
        _cleanup_free_ char *data = malloc(len), *s = NULL;
        char id[BLOB_HEX_SIZE], expect[BLOB_HEX_SIZE];
        uint64_t size = 0;
        _cleanup_free_ char *before = NULL, *after = NULL;

        assert_non_null(data);
        pattern(data, len, 11);
        data[5] = '\0'; /* binary, NULs included */
        blob_digest(data, len, expect);
        before = list_dir(f->store);

        /* in uneven pieces */
        {
                _cleanup_(blob_writer_freep) struct blob_writer *w = NULL;
                size_t off = 0, step = 1;

                assert_int_equal(blob_writer_new(f->b, len, &w), 0);
                while (off < len) {
                        size_t k = step < len - off ? step : len - off;

                        assert_int_equal(blob_writer_write(w, data + off, k), 0);
                        off += k;
                        step = step * 3 + 1;
                }
                assert_int_equal(blob_writer_write(w, NULL, 0), 0);
                assert_int_equal(blob_writer_size(w), len);
                assert_int_equal(blob_writer_commit(w, id, &size), 0);
                assert_int_equal(blob_writer_commit(w, id, &size), -EINVAL); /* once */
        }
        assert_string_equal(id, expect);
        assert_int_equal(size, len);
        assert_int_equal(blob_read(f->b, id, len, len, &s), 0);
        assert_memory_equal(s, data, len);

        /* the same content again: a success, nothing new */
        {
                _cleanup_(blob_writer_freep) struct blob_writer *w = NULL;

                assert_int_equal(blob_writer_new(f->b, len, &w), 0);
                assert_int_equal(blob_writer_write(w, data, len), 0);
                assert_int_equal(blob_writer_commit(w, id, NULL), 0);
                assert_string_equal(id, expect);
        }

        /* empty */
        {
                _cleanup_(blob_writer_freep) struct blob_writer *w = NULL;

                assert_int_equal(blob_writer_new(f->b, 0, &w), 0);
                assert_int_equal(blob_writer_commit(w, id, &size), 0);
                assert_string_equal(id, EMPTY_SHA256);
                assert_int_equal(size, 0);
        }

        /* over max: refused, spent, and nothing left behind when freed */
        {
                _cleanup_(blob_writer_freep) struct blob_writer *w = NULL;

                assert_int_equal(blob_writer_new(f->b, 10, &w), 0);
                assert_int_equal(blob_writer_write(w, "0123456789", 10), 0);
                assert_int_equal(blob_writer_write(w, "x", 1), -EFBIG);
                assert_int_equal(blob_writer_size(w), 10);
                assert_int_equal(blob_writer_write(w, "", 0), -EINVAL);
                assert_int_equal(blob_writer_commit(w, id, NULL), -EINVAL);
        }
        /* abandoned half-way: nothing left behind */
        {
                struct blob_writer *w = NULL;

                assert_int_equal(blob_writer_new(f->b, len, &w), 0);
                assert_int_equal(blob_writer_write(w, "half", 4), 0);
                w = blob_writer_free(w);
                assert_null(w);
        }
        after = list_dir(f->store);
        /* only fan-out directories of the blobs stored above, no temporary file */
        assert_null(strstr(after, ".tmp-"));
        assert_null(blob_writer_free(NULL));
}

static void test_copy_to_fd(void **state)
{
        struct fixture *f = *state;
        const size_t len = 200000;
        _cleanup_free_ char *data = malloc(len), *back = malloc(len);
        char id[BLOB_HEX_SIZE], path[PATH_MAX], c;
        _cleanup_close_ int out = -EBADF;

        assert_non_null(data);
        assert_non_null(back);
        pattern(data, len, 5);
        assert_int_equal(blob_put(f->b, data, len, id), 0);

        out = memfd_create("copy", MFD_CLOEXEC);
        assert_true(out >= 0);
        assert_int_equal(blob_copy_to_fd(f->b, id, len, out), 0);
        assert_int_equal(pread(out, back, len, 0), (ssize_t) len);
        assert_memory_equal(back, data, len);

        /* wrong size, missing, malformed */
        assert_int_equal(blob_copy_to_fd(f->b, id, len - 1, out), -EBADMSG);
        assert_int_equal(blob_copy_to_fd(f->b, EMPTY_SHA256, 0, out), -ENOENT);
        assert_int_equal(blob_copy_to_fd(f->b, "nope", 0, out), -EINVAL);

        /* one byte flipped on disk: the copy says so */
        blob_path(f, id, path);
        {
                _cleanup_close_ int raw = -EBADF;

                assert_int_equal(chmod(path, 0600), 0);
                raw = open(path, O_RDWR | O_CLOEXEC);
                assert_true(raw >= 0);
                c = (char) (data[len - 1] ^ 0x80);
                assert_int_equal(pwrite(raw, &c, 1, (off_t) len - 1), 1);
        }
        assert_int_equal(ftruncate(out, 0), 0);
        assert_int_equal(lseek(out, 0, SEEK_SET), 0);
        assert_int_equal(blob_copy_to_fd(f->b, id, len, out), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_store_dir, setup, teardown),
                cmocka_unit_test(test_digest),
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_large_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idempotent_put, setup, teardown),
                cmocka_unit_test_setup_teardown(test_put_fd, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncated_and_grown, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_size, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_malformed_ids, setup, teardown),
                cmocka_unit_test_setup_teardown(test_planted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_puts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_fd_leak, setup, teardown),
                cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy_to_fd, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
