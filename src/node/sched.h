/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The master's scheduler (node --role master): one thread that owns the workers' ROUTER socket
 * (src/net/proto.h), the ZAP handler, the queue and the leases. Other threads talk to it only
 * through the functions below, which hand it a command and wake it.
 */

#include <stdbool.h>
#include <stdint.h>

struct node;
struct sched;

struct sched_options {
        char *listen;   /* "tcp://0.0.0.0:7781" */
        char *key_file; /* the master's secret key file */
        unsigned heartbeat_ms;
        unsigned lease_ms; /* a lease not renewed for this long is lost */
        unsigned max_attempts;
};

/* What the scheduler knows of a worker now (in memory; the store has the rest). */
struct sched_worker_status {
        bool connected;
        unsigned slots;   /* concurrent jobs it announced */
        unsigned running; /* leases it holds */
        unsigned cpus;
        uint64_t memory;
        int64_t last_heartbeat; /* Unix ns; 0: none since the master started */
};

int sched_start(struct node *n, const struct sched_options *opts, struct sched **ret);
void sched_stop(struct sched *s);

/* A job was queued (or re-queued): the scheduler considers it. */
void sched_job_queued(struct sched *s, const char *job_id);
/* A job was cancelled (the store says so already): its replicas' workers kill them. 1 if some
 * worker held it. */
int sched_job_cancel(struct sched *s, const char *job_id);
/* -ENOENT if the worker is not connected (ret is then zeroed, connected false). */
int sched_worker_status(struct sched *s, int64_t worker_id, struct sched_worker_status *ret);
/* A worker was deleted: its connection is dropped and its leases go back to the queue. */
void sched_worker_removed(struct sched *s, int64_t worker_id);
