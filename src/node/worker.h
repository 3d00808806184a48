/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A worker node (node --role worker): no API, no store; its runners execute what its master
 * assigns. The agent (worker.c) owns the DEALER to the master (src/net/proto.h) on the main
 * thread: it announces the worker's capacity, renews its leases by heartbeat, fetches inputs
 * into the local blob cache (by SHA-256, checked), hands assignments to the runners, relays their
 * output and results, and kills what the master cancels. Runners talk to it only through the
 * functions below.
 */

#include <stddef.h>

struct node;
struct node_exec;
struct worker_agent;

/* Runs a worker node until SIGTERM/SIGINT; the process exit code. */
int worker_run(struct node *n);

/* Blocks until an assignment is ready to run (0, *ret filled) or the worker stops (-ESHUTDOWN). */
int worker_agent_take(struct worker_agent *a, struct node_exec *ret);
/* Live output of the job under lease. */
void worker_agent_output(struct worker_agent *a, const char *lease, const char *step,
                         const char *stream, const char *data, size_t len);
/* The end of the job under lease: result (JSON text) or error; both NULL: cancelled, nothing is
 * sent. */
void worker_agent_result(struct worker_agent *a, const char *lease, const char *result,
                         const char *error);
/* Wakes every runner waiting in worker_agent_take() with -ESHUTDOWN. */
void worker_agent_shutdown(struct worker_agent *a);
