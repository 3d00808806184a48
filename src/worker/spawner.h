/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The spawner: a pool of single-threaded processes that run sandboxes for a threaded daemon.
 *
 * A process with threads must not clone() into namespaces (another thread may hold a libc lock
 * that the child would inherit locked). So the node forks its spawners *before* it starts any
 * thread; each one owns a sandbox context and runs one sandbox at a time for the slot it serves.
 * The daemon talks to a spawner over a Unix stream socket: a request is the sandbox
 * configuration (JSON, bounded) with the sandbox's stdin, stdout and stderr passed as file
 * descriptors; the reply is the report. A spawner exits when its socket reaches EOF or its
 * parent dies, killing the sandbox it runs.
 */

#include <sys/types.h>

#include "common/cleanup.h"
#include "sandbox/sandbox.h"

/* The largest configuration a request may carry (argv, env, mounts): big inputs go in files. */
#define SPAWNER_MAX_REQUEST (UINT32_C(4) << 20)

struct spawner;

/*
 * Forks n spawner processes, each with a sandbox context made from opts. Must be called while
 * the process is still single-threaded.
 */
int spawner_new(const struct sandbox_context_options *opts, unsigned n, struct spawner **ret);

/* Closes the sockets; each spawner kills its sandbox, if any, and exits; all are reaped. */
struct spawner *spawner_free(struct spawner *s);

unsigned spawner_size(const struct spawner *s);

/*
 * Runs cfg in a sandbox of slot `slot` (< spawner_size()) and waits for the report. The fds in
 * cfg (stdin_fd, stdout_fd, stderr_fd; < 0: none) are passed to the spawner and stay owned by
 * the caller. Calls on different slots may run in parallel threads; calls on one slot must not.
 * Returns < 0 if the request is invalid (-EINVAL, -E2BIG) or the spawner is gone (-EPIPE).
 */
int spawner_run(struct spawner *s, unsigned slot, const struct sandbox_config *cfg,
                struct sandbox_report *ret);

/*
 * spawner_run() in two halves, for a caller that polls other fds meanwhile: spawner_start() sends
 * the request; spawner_fd() becomes readable when the report is ready; spawner_finish() reads it
 * (blocking until then). A start must be followed by its finish before the slot's next start.
 */
int spawner_start(struct spawner *s, unsigned slot, const struct sandbox_config *cfg);
int spawner_fd(const struct spawner *s, unsigned slot);
int spawner_finish(struct spawner *s, unsigned slot, struct sandbox_report *ret);

/*
 * Replaces the spawner of slot `slot` (dead, or in a state no one trusts) with a new one: kills and
 * reaps the old process, then starts `/proc/self/exe spawner-internal ...` (fork and exec: safe in
 * a threaded process) on a new socket. Only the caller that uses the slot may call it.
 */
int spawner_respawn(struct spawner *s, unsigned slot);

/* The loop of a spawner process on socket sock (what `warren spawner-internal` runs). */
_noreturn_ void spawner_serve(const struct sandbox_context_options *opts, int sock);

/* Kills the sandbox slot `slot` is running, if any (async-signal-safe). */
int spawner_cancel(struct spawner *s, unsigned slot);
