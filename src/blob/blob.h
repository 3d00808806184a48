/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Blobs: immutable byte strings stored by content, named by their SHA-256 (64 lowercase hex
 * digits) under a directory: DIR/ab/abcdef... . A blob is written to a temporary file, fsync'd,
 * then renamed into place (and the directory fsync'd), so a name on disk always holds its whole
 * content. Every read checks the size the caller expects and the digest before a byte is handed
 * out: a blob flipped on disk is reported (-EBADMSG) and never served.
 * Thread-safe: a blob store holds only a directory fd.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cleanup.h"

#define BLOB_HEX_LEN  64
#define BLOB_HEX_SIZE (BLOB_HEX_LEN + 1)

struct blob_store;

/* Opens (creating, 0700) the directory. */
int blob_store_open(const char *dir, struct blob_store **ret);
struct blob_store *blob_store_free(struct blob_store *b);
DEFINE_FREE_FUNC(struct blob_store *, blob_store_free)

/* True if s is BLOB_HEX_LEN lowercase hex digits. */
bool blob_id_valid(const char *s);

/* The SHA-256 of data, as hex. */
void blob_digest(const void *data, size_t len, char ret_id[static BLOB_HEX_SIZE]);

/* Stores data; storing an existing blob again is a cheap success. */
int blob_put(struct blob_store *b, const void *data, size_t len, char ret_id[static BLOB_HEX_SIZE]);
/* Stores the content of fd from offset 0 to its end, at most max bytes (-EFBIG beyond). */
int blob_put_fd(struct blob_store *b, int fd, uint64_t max, uint64_t *ret_size,
                char ret_id[static BLOB_HEX_SIZE]);

/*
 * Opens blob id after checking that it has `size` bytes and digests to id: 0 and *ret_fd
 * (O_RDONLY|O_CLOEXEC, at offset 0), -ENOENT if missing, -EBADMSG if its size or digest is wrong,
 * -EINVAL for a malformed id.
 */
int blob_open(struct blob_store *b, const char *id, uint64_t size, int *ret_fd);
/* Reads a whole verified blob of at most max bytes into memory (malloc'd, NUL-terminated). */
int blob_read(struct blob_store *b, const char *id, uint64_t size, size_t max, char **ret);
/*
 * Copies blob id to out_fd (at its current offset) while digesting it: -EBADMSG if what was read
 * is not `size` bytes digesting to id (what was written is then garbage the caller discards), as
 * blob_open(). One pass, so the bytes checked are the bytes copied.
 */
int blob_copy_to_fd(struct blob_store *b, const char *id, uint64_t size, int out_fd);

/*
 * A blob written piece by piece (an upload): into a temporary file in the store's directory,
 * digested as it goes, never held whole in memory. Nothing has a name until
 * blob_writer_commit(); freeing an uncommitted writer leaves nothing behind.
 */
struct blob_writer;

/* max: the most bytes it takes. */
int blob_writer_new(struct blob_store *b, uint64_t max, struct blob_writer **ret);
/* -EFBIG if the blob would exceed max (nothing of data is written then); the writer is then
 * spent: only blob_writer_free() remains. */
int blob_writer_write(struct blob_writer *w, const void *data, size_t len);
/* The bytes written so far. */
uint64_t blob_writer_size(const struct blob_writer *w);
/* fsyncs and names the blob (a blob with the same content already there stays as it is); once. */
int blob_writer_commit(struct blob_writer *w, char ret_id[static BLOB_HEX_SIZE],
                       uint64_t *ret_size);
/* Accepts NULL; returns NULL. */
struct blob_writer *blob_writer_free(struct blob_writer *w);
DEFINE_FREE_FUNC(struct blob_writer *, blob_writer_free)

/* Removes a blob (-ENOENT if missing). */
int blob_remove(struct blob_store *b, const char *id);
