/* SPDX-License-Identifier: MIT */
#include "blob/blob.h"

/*
 * Theory of operation.
 *
 * The store is a directory fd; every name under it is reached with openat() and friends relative
 * to it, one component at a time, never following a symlink (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW): a
 * fan-out directory DIR/ab/ holds the blobs whose id starts with "ab", each named by its id.
 *
 * A put writes a temporary file in DIR: an O_TMPFILE (nameless, so a crash leaves nothing
 * behind) where the filesystem has them, else a file with a random name created O_EXCL. The
 * content is digested as it is written, fsync'd, then given its name: the nameless file is
 * linked into DIR/ab/ under a temporary name, and either kind is renamed onto DIR/ab/<id>, which
 * atomically replaces whatever was there (a damaged copy, a planted symlink); then DIR/ab/ is
 * fsync'd. Linking an O_TMPFILE takes linkat(AT_EMPTY_PATH), which needs CAP_DAC_READ_SEARCH,
 * or /proc/self/fd: blob_store_open() probes once which works and falls back to named files if
 * neither does. A blob already present with the right size and digest is not written again.
 *
 * A read opens the name (O_NONBLOCK, so a planted FIFO cannot block it), requires a regular file
 * of the expected size, digests every byte, checks end of file, and only then hands out the fd,
 * rewound. Anything else found at a blob's name (a symlink, a directory, a FIFO, a symlinked
 * fan-out directory) is a damaged blob: -EBADMSG, as for a wrong size or digest.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "common/util.h"

#define CHUNK         (64 * 1024)
#define TMP_PREFIX    ".tmp-"
#define TMP_NAME_SIZE (sizeof(TMP_PREFIX) - 1 + 32 + 1)
#define TMP_ATTEMPTS  16

_Static_assert(BLOB_HEX_LEN == 2 * crypto_hash_sha256_BYTES, "hex length");

enum tmp_kind {
        TMP_LINK_EMPTY_PATH, /* O_TMPFILE, linked with AT_EMPTY_PATH */
        TMP_LINK_PROC,       /* O_TMPFILE, linked through /proc/self/fd */
        TMP_NAMED,           /* a named file, O_EXCL */
};

struct blob_store {
        int dfd;
        enum tmp_kind tmp;
};

/* A temporary file in the store's directory; name[0] != '\0' while a named one exists there. */
struct tmp {
        int dfd;
        int fd;
        char name[TMP_NAME_SIZE];
};

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_result = -EIO;

static void sodium_init_once(void)
{
        sodium_result = sodium_init() < 0 ? -EIO : 0;
}

static int sodium_ready(void)
{
        int r = pthread_once(&sodium_once, sodium_init_once);

        if (r != 0)
                return -r;
        return sodium_result;
}

bool blob_id_valid(const char *s)
{
        if (!s)
                return false;
        for (size_t i = 0; i < BLOB_HEX_LEN; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return s[BLOB_HEX_LEN] == '\0';
}

static void to_hex(const unsigned char bin[static crypto_hash_sha256_BYTES],
                   char ret[static BLOB_HEX_SIZE])
{
        (void) sodium_bin2hex(ret, BLOB_HEX_SIZE, bin, crypto_hash_sha256_BYTES);
}

static void state_final_hex(crypto_hash_sha256_state *st, char ret[static BLOB_HEX_SIZE])
{
        unsigned char out[crypto_hash_sha256_BYTES];

        (void) crypto_hash_sha256_final(st, out);
        to_hex(out, ret);
}

/* SHA-256 is plain computation in libsodium: it needs no sodium_init(), hence no error here. */
void blob_digest(const void *data, size_t len, char ret_id[static BLOB_HEX_SIZE])
{
        crypto_hash_sha256_state st;

        (void) crypto_hash_sha256_init(&st);
        (void) crypto_hash_sha256_update(&st, data, len);
        state_final_hex(&st, ret_id);
}

/* ".tmp-" and 32 random hex digits. */
static void tmp_name(char ret[static TMP_NAME_SIZE])
{
        unsigned char rnd[16];

        randombytes_buf(rnd, sizeof(rnd));
        memcpy(ret, TMP_PREFIX, sizeof(TMP_PREFIX) - 1);
        (void) sodium_bin2hex(ret + sizeof(TMP_PREFIX) - 1, 33, rnd, sizeof(rnd));
}

/* Links the O_TMPFILE fd into dirfd as name. */
static int link_tmpfile(enum tmp_kind kind, int fd, int dirfd, const char *name)
{
        char path[64];

        if (kind == TMP_LINK_EMPTY_PATH) {
                if (linkat(fd, "", dirfd, name, AT_EMPTY_PATH) < 0)
                        return -errno;
                return 0;
        }
        if (snprintf(path, sizeof(path), "/proc/self/fd/%d", fd) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        if (linkat(AT_FDCWD, path, dirfd, name, AT_SYMLINK_FOLLOW) < 0)
                return -errno;
        return 0;
}

/* Which kind of temporary file works in dfd: an O_TMPFILE that can be linked, or a named one. */
static int probe_tmp(int dfd, enum tmp_kind *ret)
{
        static const enum tmp_kind kinds[] = {TMP_LINK_EMPTY_PATH, TMP_LINK_PROC};

        _cleanup_close_ int fd = -EBADF;
        char name[TMP_NAME_SIZE];

        fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0400);
        if (fd < 0) {
                /* Not supported by the kernel (EISDIR) or the filesystem (EOPNOTSUPP), or not
                 * allowed here: a named file will say what is wrong when one is written. */
                *ret = TMP_NAMED;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                tmp_name(name);
                if (link_tmpfile(kinds[i], fd, dfd, name) < 0)
                        continue;
                if (unlinkat(dfd, name, 0) < 0)
                        return -errno;
                *ret = kinds[i];
                return 0;
        }
        *ret = TMP_NAMED;
        return 0;
}

int blob_store_open(const char *dir, struct blob_store **ret)
{
        _cleanup_close_ int dfd = -EBADF;
        struct blob_store *b;
        enum tmp_kind kind = TMP_NAMED;
        int r;

        if (!dir || !*dir)
                return -EINVAL;
        r = sodium_ready();
        if (r < 0)
                return r;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* The directory itself is the operator's choice and may be a symlink; below it, no. */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        r = probe_tmp(dfd, &kind);
        if (r < 0)
                return r;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->dfd = TAKE_FD(dfd);
        b->tmp = kind;
        *ret = b;
        return 0;
}

struct blob_store *blob_store_free(struct blob_store *b)
{
        if (!b)
                return NULL;
        (void) safe_close(b->dfd);
        free(b);
        return NULL;
}

/* ---- the fan-out directories ---- */

/* Opens DIR/ab/ for id, creating it (0700, and fsync'ing DIR) if asked to. */
static int open_subdir(struct blob_store *b, const char *id, bool create, int *ret_fd)
{
        const char name[3] = {id[0], id[1], '\0'};
        int fd;

        if (create) {
                if (mkdirat(b->dfd, name, 0700) >= 0) {
                        if (fsync(b->dfd) < 0)
                                return -errno;
                } else if (errno != EEXIST)
                        return -errno;
        }
        fd = openat(b->dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                /* A symlink or a file where the directory should be: the store is damaged. */
                if (errno == ELOOP || errno == ENOTDIR)
                        return -EBADMSG;
                return -errno;
        }
        *ret_fd = fd;
        return 0;
}

/* ---- reading ---- */

/*
 * Digests fd (at offset 0), which must hold exactly size bytes, into ret_hex; the bytes also go
 * to buf when it is not NULL (size bytes of room). -EBADMSG if the length differs.
 */
static int digest_fd(int fd, uint64_t size, char *buf, char ret_hex[static BLOB_HEX_SIZE])
{
        _cleanup_free_ char *chunk = NULL;
        crypto_hash_sha256_state st;
        uint64_t done = 0;

        if (!buf) {
                chunk = malloc(CHUNK);
                if (!chunk)
                        return -ENOMEM;
        }
        (void) crypto_hash_sha256_init(&st);
        for (;;) {
                char extra;
                char *p;
                size_t want;
                ssize_t n;

                if (done < size) {
                        p = buf ? buf + done : chunk;
                        want = buf ? (size_t) (size - done)
                                   : (size - done < CHUNK ? (size_t) (size - done) : CHUNK);
                } else {
                        /* One more byte: the file must end here. */
                        p = &extra;
                        want = 1;
                }
                n = read(fd, p, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                if (done >= size)
                        return -EBADMSG; /* longer than its size (it grew since fstat()) */
                (void) crypto_hash_sha256_update(&st, (const unsigned char *) p, (size_t) n);
                done += (uint64_t) n;
        }
        if (done != size)
                return -EBADMSG;
        state_final_hex(&st, ret_hex);
        return 0;
}

/* Opens blob id in subfd and checks its type, size and digest; buf as for digest_fd(). */
static int open_checked(int subfd, const char *id, uint64_t size, char *buf, int *ret_fd)
{
        _cleanup_close_ int fd = -EBADF;
        char hex[BLOB_HEX_SIZE];
        struct stat stb;
        int flags, r;

        fd = openat(subfd, id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                /* ELOOP: a symlink; ENXIO: a socket. */
                if (errno == ELOOP || errno == ENXIO)
                        return -EBADMSG;
                return -errno;
        }
        if (fstat(fd, &stb) < 0)
                return -errno;
        if (!S_ISREG(stb.st_mode) || (uint64_t) stb.st_size != size)
                return -EBADMSG;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        if (fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
                return -errno;
        r = digest_fd(fd, size, buf, hex);
        if (r < 0)
                return r;
        if (strcmp(hex, id) != 0)
                return -EBADMSG;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int open_blob(struct blob_store *b, const char *id, uint64_t size, char *buf, int *ret_fd)
{
        _cleanup_close_ int subfd = -EBADF;
        int r;

        if (!blob_id_valid(id))
                return -EINVAL;
        r = open_subdir(b, id, false, &subfd);
        if (r < 0)
                return r;
        return open_checked(subfd, id, size, buf, ret_fd);
}

int blob_open(struct blob_store *b, const char *id, uint64_t size, int *ret_fd)
{
        return open_blob(b, id, size, NULL, ret_fd);
}

int blob_read(struct blob_store *b, const char *id, uint64_t size, size_t max, char **ret)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        int r;

        if (!blob_id_valid(id))
                return -EINVAL;
        if (size > max || size >= SIZE_MAX)
                return -EFBIG;
        buf = malloc((size_t) size + 1);
        if (!buf)
                return -ENOMEM;
        r = open_blob(b, id, size, buf, &fd);
        if (r < 0)
                return r;
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

/* ---- writing ---- */

static void tmp_clear(struct tmp *t)
{
        if (t->name[0] != '\0')
                (void) unlinkat(t->dfd, t->name, 0);
        t->fd = safe_close(t->fd);
}

static int tmp_create(struct blob_store *b, struct tmp *t)
{
        t->dfd = b->dfd;
        t->name[0] = '\0';
        if (b->tmp != TMP_NAMED) {
                t->fd = openat(b->dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0400);
                return t->fd < 0 ? -errno : 0;
        }
        for (int i = 0; i < TMP_ATTEMPTS; i++) {
                char name[TMP_NAME_SIZE];

                tmp_name(name);
                t->fd = openat(b->dfd, name,
                               O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                               0400);
                if (t->fd >= 0) {
                        memcpy(t->name, name, sizeof(name));
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

/* Gives the written, fsync'd temporary file the name subfd/id. */
static int tmp_commit(struct blob_store *b, struct tmp *t, int subfd, const char *id)
{
        char name[TMP_NAME_SIZE];
        int r;

        if (fsync(t->fd) < 0)
                return -errno;
        if (t->name[0] != '\0') {
                if (renameat(t->dfd, t->name, subfd, id) < 0)
                        return -errno;
                t->name[0] = '\0';
        } else {
                for (int i = 0;; i++) {
                        tmp_name(name);
                        r = link_tmpfile(b->tmp, t->fd, subfd, name);
                        if (r != -EEXIST || i + 1 >= TMP_ATTEMPTS)
                                break;
                }
                if (r < 0)
                        return r;
                if (renameat(subfd, name, subfd, id) < 0) {
                        r = -errno;
                        (void) unlinkat(subfd, name, 0);
                        return r;
                }
        }
        if (fsync(subfd) < 0)
                return -errno;
        return 0;
}

/* 1 if subfd/id already holds the blob (size bytes, right digest), 0 if not or damaged. */
static int present(int subfd, const char *id, uint64_t size)
{
        _cleanup_close_ int fd = -EBADF;
        struct stat stb;
        int r;

        if (fstatat(subfd, id, &stb, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISREG(stb.st_mode) || (uint64_t) stb.st_size != size)
                return 0;
        r = open_checked(subfd, id, size, NULL, &fd);
        if (r == -EBADMSG || r == -ENOENT)
                return 0;
        return r < 0 ? r : 1;
}

int blob_put(struct blob_store *b, const void *data, size_t len, char ret_id[static BLOB_HEX_SIZE])
{
        _cleanup_(tmp_clear) struct tmp t = {.fd = -EBADF};
        _cleanup_close_ int subfd = -EBADF;
        char id[BLOB_HEX_SIZE];
        int r;

        if (!data && len > 0)
                return -EINVAL;
        blob_digest(data, len, id);
        r = open_subdir(b, id, true, &subfd);
        if (r < 0)
                return r;
        r = present(subfd, id, len);
        if (r < 0)
                return r;
        if (r == 0) {
                r = tmp_create(b, &t);
                if (r < 0)
                        return r;
                r = write_full(t.fd, data, len);
                if (r < 0)
                        return r;
                r = tmp_commit(b, &t, subfd, id);
                if (r < 0)
                        return r;
        }
        memcpy(ret_id, id, sizeof(id));
        return 0;
}

int blob_put_fd(struct blob_store *b, int fd, uint64_t max, uint64_t *ret_size,
                char ret_id[static BLOB_HEX_SIZE])
{
        _cleanup_(tmp_clear) struct tmp t = {.fd = -EBADF};
        _cleanup_close_ int subfd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        crypto_hash_sha256_state st;
        char id[BLOB_HEX_SIZE];
        uint64_t off = 0;
        int r;

        if (fd < 0)
                return -EBADF;
        buf = malloc(CHUNK);
        if (!buf)
                return -ENOMEM;
        r = tmp_create(b, &t);
        if (r < 0)
                return r;
        (void) crypto_hash_sha256_init(&st);
        for (;;) {
                ssize_t n = pread(fd, buf, CHUNK, (off_t) off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                if ((uint64_t) n > max - off)
                        return -EFBIG;
                (void) crypto_hash_sha256_update(&st, (const unsigned char *) buf, (size_t) n);
                r = write_full(t.fd, buf, (size_t) n);
                if (r < 0)
                        return r;
                off += (uint64_t) n;
        }
        state_final_hex(&st, id);

        r = open_subdir(b, id, true, &subfd);
        if (r < 0)
                return r;
        r = present(subfd, id, off);
        if (r < 0)
                return r;
        if (r == 0) {
                r = tmp_commit(b, &t, subfd, id);
                if (r < 0)
                        return r;
        }
        if (ret_size)
                *ret_size = off;
        memcpy(ret_id, id, sizeof(id));
        return 0;
}

/* ---- streamed writing ---- */

struct blob_writer {
        struct blob_store *store;
        struct tmp tmp;
        crypto_hash_sha256_state st;
        uint64_t size, max;
        bool failed, committed;
};

int blob_writer_new(struct blob_store *b, uint64_t max, struct blob_writer **ret)
{
        struct blob_writer *w;
        int r;

        if (!b || !ret)
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->store = b;
        w->max = max;
        w->tmp.fd = -EBADF;
        r = tmp_create(b, &w->tmp);
        if (r < 0) {
                free(w);
                return r;
        }
        (void) crypto_hash_sha256_init(&w->st);
        *ret = w;
        return 0;
}

int blob_writer_write(struct blob_writer *w, const void *data, size_t len)
{
        int r;

        if (w->failed || w->committed)
                return -EINVAL;
        if (len == 0)
                return 0;
        if (!data)
                return -EINVAL;
        if ((uint64_t) len > w->max - w->size) {
                w->failed = true;
                return -EFBIG;
        }
        r = write_full(w->tmp.fd, data, len);
        if (r < 0) {
                w->failed = true;
                return r;
        }
        (void) crypto_hash_sha256_update(&w->st, data, len);
        w->size += len;
        return 0;
}

uint64_t blob_writer_size(const struct blob_writer *w)
{
        return w->size;
}

int blob_writer_commit(struct blob_writer *w, char ret_id[static BLOB_HEX_SIZE], uint64_t *ret_size)
{
        _cleanup_close_ int subfd = -EBADF;
        char id[BLOB_HEX_SIZE];
        int r;

        if (w->failed || w->committed)
                return -EINVAL;
        w->committed = true; /* whatever happens now, once */
        state_final_hex(&w->st, id);
        r = open_subdir(w->store, id, true, &subfd);
        if (r < 0)
                return r;
        r = present(subfd, id, w->size);
        if (r < 0)
                return r;
        if (r == 0) {
                r = tmp_commit(w->store, &w->tmp, subfd, id);
                if (r < 0)
                        return r;
        }
        memcpy(ret_id, id, sizeof(id));
        if (ret_size)
                *ret_size = w->size;
        return 0;
}

struct blob_writer *blob_writer_free(struct blob_writer *w)
{
        if (!w)
                return NULL;
        tmp_clear(&w->tmp);
        free(w);
        return NULL;
}

/* ---- copying out ---- */

int blob_copy_to_fd(struct blob_store *b, const char *id, uint64_t size, int out_fd)
{
        _cleanup_close_ int subfd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        crypto_hash_sha256_state st;
        char hex[BLOB_HEX_SIZE];
        struct stat stb;
        uint64_t done = 0;
        int r;

        if (!blob_id_valid(id))
                return -EINVAL;
        r = open_subdir(b, id, false, &subfd);
        if (r < 0)
                return r;
        fd = openat(subfd, id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return errno == ELOOP || errno == ENXIO ? -EBADMSG : -errno;
        if (fstat(fd, &stb) < 0)
                return -errno;
        if (!S_ISREG(stb.st_mode) || (uint64_t) stb.st_size != size)
                return -EBADMSG;
        buf = malloc(CHUNK);
        if (!buf)
                return -ENOMEM;
        (void) crypto_hash_sha256_init(&st);
        for (;;) {
                ssize_t n = read(fd, buf, CHUNK);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                if ((uint64_t) n > size - done)
                        return -EBADMSG; /* it grew */
                (void) crypto_hash_sha256_update(&st, (const unsigned char *) buf, (size_t) n);
                r = write_full(out_fd, buf, (size_t) n);
                if (r < 0)
                        return r;
                done += (uint64_t) n;
        }
        if (done != size)
                return -EBADMSG;
        state_final_hex(&st, hex);
        return strcmp(hex, id) == 0 ? 0 : -EBADMSG;
}

int blob_remove(struct blob_store *b, const char *id)
{
        _cleanup_close_ int subfd = -EBADF;
        int r;

        if (!blob_id_valid(id))
                return -EINVAL;
        r = open_subdir(b, id, false, &subfd);
        if (r < 0)
                return r;
        if (unlinkat(subfd, id, 0) < 0)
                return -errno;
        if (fsync(subfd) < 0)
                return -errno;
        return 0;
}
