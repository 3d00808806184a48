/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY — delete at the merge with src/node/sched.c, which implements node/sched.h.
 *
 * Only the scheduler functions the workers' routes (routes-workers.c) call, so that the branch
 * links: they call them only when the node has a scheduler (n->sched != NULL), which no node of
 * this branch has, so these are never reached.
 */
#include <errno.h>

#include "node/sched.h"

int sched_worker_status(struct sched *s, int64_t worker_id, struct sched_worker_status *ret)
{
        *ret = (struct sched_worker_status){};
        return -ENOENT;
}

void sched_worker_removed(struct sched *s, int64_t worker_id)
{
}
