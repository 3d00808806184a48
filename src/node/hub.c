/* SPDX-License-Identifier: MIT */
#include "node/hub.h"

/*
 * Theory of operation.
 *
 * One mutex guards the whole hub. Each job has an entry in a hash table keyed by its id (SipHash
 * with a random key, so ids chosen by a client cannot pile up in one chain); each entry has its
 * own condition variable, broadcast when an event is appended, so that a publish wakes only the
 * followers of that job. Runners wait for work on one more condition variable, over a counter:
 * a counting semaphore. Every condition variable measures time on CLOCK_MONOTONIC, and every
 * wait loops on its predicate against one absolute deadline, so spurious wakeups and a changed
 * wall clock are both harmless.
 *
 * An entry's events sit in two FIFOs ordered by seq: the kept one (state and end events, never
 * dropped) and the output one (dropped from its head while the entry's events cost more than
 * max_replay_bytes, an event costing its length plus HUB_EVENT_OVERHEAD). Seqs are dense, so a
 * follower at cursor c gets the first kept event of either FIFO after c, and a gap is exactly
 * "that seq is not c + 1". A newly appended output event can be dropped at once (larger than
 * the whole bound): a follower then learns of it as a gap at the next event, at the latest at
 * the end event, which is always kept.
 *
 * Lifetime: an entry lives while it is watched, while it has events and has not ended (its
 * producer is still at work), and, once ended, while it is one of the last HUB_RETAIN_ENDED
 * entries to have ended (a FIFO through the entries). Whenever one of those stops holding,
 * entry_release() frees it if none of the others does. A watch-only entry that never saw an
 * event goes with its last watch. The number of entries is capped (HUB_MAX_ENTRIES), and each
 * entry's events by max_replay_bytes (plus its state and end events), so memory is bounded.
 */

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

#define BUCKETS_MIN 64
#define QUEUE_MIN   8

struct hub_item {
        uint64_t seq;
        char *data; /* NUL-terminated copy */
        size_t len;
        char name[HUB_EVENT_NAME_MAX + 1];
};

/* A FIFO of items in seq order: a ring that doubles when full and halves when mostly empty. */
struct hub_queue {
        struct hub_item *v;
        size_t cap, head, n;
};

struct hub_entry {
        struct hub_entry *next;  /* hash chain */
        struct hub_entry *newer; /* the retained ended entries, oldest first */
        pthread_cond_t cond;
        uint64_t last_seq;
        size_t cost; /* of the items of both queues */
        struct hub_queue kept;
        struct hub_queue output;
        size_t watches;
        bool ended;
        bool retained;
        char id[HUB_ID_MAX + 1];
};

struct hub {
        pthread_mutex_t lock;
        pthread_condattr_t condattr;
        pthread_cond_t work_cond;
        uint64_t work;
        bool shutdown;
        size_t max_replay;

        struct hub_entry **buckets;
        size_t n_buckets; /* a power of two */
        size_t n_entries;
        unsigned char hash_key[crypto_shorthash_KEYBYTES];

        struct hub_entry *oldest_ended, *newest_ended;
        size_t n_retained;

        size_t n_watches;
        size_t n_waiters;
};

struct hub_watch {
        struct hub *hub;
        struct hub_entry *entry;
};

/* A relative timeout turned into an absolute CLOCK_MONOTONIC deadline, on first need. */
struct deadline {
        uint64_t timeout_ns;
        bool set;
        bool forever;
        bool passed;
        struct timespec at;
};

static void lock(struct hub *h)
{
        int r = pthread_mutex_lock(&h->lock);

        assert(r == 0);
        (void) r;
}

static void unlock(struct hub *h)
{
        int r = pthread_mutex_unlock(&h->lock);

        assert(r == 0);
        (void) r;
}

/*
 * Blocks on c until woken or the deadline passes (then d->passed is set). Returns -ETIMEDOUT
 * without blocking once it has passed, or for a zero timeout. The caller re-checks its predicate
 * after every return of 0.
 */
static int wait_on(struct hub *h, pthread_cond_t *c, struct deadline *d)
{
        int r;

        if (d->passed || d->timeout_ns == 0)
                return -ETIMEDOUT;
        if (!d->set) {
                uint64_t now = now_ns(CLOCK_MONOTONIC);

                d->set = true;
                if (d->timeout_ns > UINT64_MAX - now)
                        d->forever = true;
                else {
                        uint64_t at = now + d->timeout_ns;

                        d->at.tv_sec = (time_t) (at / UINT64_C(1000000000));
                        d->at.tv_nsec = (long) (at % UINT64_C(1000000000));
                }
        }

        h->n_waiters++;
        if (d->forever)
                r = pthread_cond_wait(c, &h->lock);
        else
                r = pthread_cond_timedwait(c, &h->lock, &d->at);
        h->n_waiters--;
        if (r == ETIMEDOUT) {
                /* One more look at the predicate, then -ETIMEDOUT. */
                d->passed = true;
                return 0;
        }
        assert(r == 0);
        return 0;
}

static bool id_valid(const char *id)
{
        size_t n = 0;

        if (!id)
                return false;
        for (; id[n] != '\0'; n++) {
                char c = id[n];

                if (n >= HUB_ID_MAX)
                        return false;
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return n > 0;
}

static bool name_valid(const char *name)
{
        size_t n = 0;

        if (!name)
                return false;
        for (; name[n] != '\0'; n++) {
                char c = name[n];

                if (n >= HUB_EVENT_NAME_MAX)
                        return false;
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-'))
                        return false;
        }
        return n > 0;
}

/* ---- event queues ---- */

static struct hub_item *queue_at(const struct hub_queue *q, size_t i)
{
        assert(i < q->n);
        return &q->v[(q->head + i) & (q->cap - 1)];
}

/* Moves the items into a new array of cap slots (a power of two, >= n), head at 0. */
static int queue_resize(struct hub_queue *q, size_t cap)
{
        struct hub_item *v;

        assert(cap >= q->n && (cap & (cap - 1)) == 0);
        v = calloc(cap, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < q->n; i++)
                v[i] = *queue_at(q, i);
        free(q->v);
        q->v = v;
        q->cap = cap;
        q->head = 0;
        return 0;
}

/* Takes ownership of it->data on success. */
static int queue_push(struct hub_queue *q, const struct hub_item *it)
{
        int r;

        if (q->n == q->cap) {
                if (q->cap > SIZE_MAX / 2 / sizeof(struct hub_item))
                        return -ENOMEM;
                r = queue_resize(q, q->cap == 0 ? QUEUE_MIN : q->cap * 2);
                if (r < 0)
                        return r;
        }
        q->n++;
        *queue_at(q, q->n - 1) = *it;
        return 0;
}

/* Frees the oldest item and returns its cost. */
static size_t queue_drop(struct hub_queue *q)
{
        struct hub_item *it = queue_at(q, 0);
        size_t cost = it->len + HUB_EVENT_OVERHEAD;

        free(it->data);
        *it = (struct hub_item){};
        q->head = (q->head + 1) & (q->cap - 1);
        q->n--;
        /* Shrinking is an economy, not a duty: a failed allocation keeps the larger array. */
        if (q->cap > QUEUE_MIN && q->n < q->cap / 4)
                (void) queue_resize(q, q->cap / 2);
        return cost;
}

static void queue_clear(struct hub_queue *q)
{
        for (size_t i = 0; i < q->n; i++)
                free(queue_at(q, i)->data);
        free(q->v);
        *q = (struct hub_queue){};
}

/* The first item with seq > cursor, or NULL. */
static const struct hub_item *queue_after(const struct hub_queue *q, uint64_t cursor)
{
        size_t lo = 0, hi = q->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (queue_at(q, mid)->seq <= cursor)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < q->n ? queue_at(q, lo) : NULL;
}

/* ---- entries ---- */

static size_t bucket_of(const struct hub *h, const char *id)
{
        unsigned char out[crypto_shorthash_BYTES];
        uint64_t v;

        (void) crypto_shorthash(out, (const unsigned char *) id, strlen(id), h->hash_key);
        memcpy(&v, out, sizeof(v));
        return (size_t) (v & (h->n_buckets - 1));
}

static struct hub_entry *entry_find(struct hub *h, const char *id)
{
        for (struct hub_entry *e = h->buckets[bucket_of(h, id)]; e; e = e->next)
                if (strcmp(e->id, id) == 0)
                        return e;
        return NULL;
}

/* Doubles the table when it holds more entries than buckets; a failure keeps longer chains. */
static void table_grow(struct hub *h)
{
        struct hub_entry **old = h->buckets;
        size_t n_old = h->n_buckets;

        if (h->n_entries <= h->n_buckets || h->n_buckets >= HUB_MAX_ENTRIES)
                return;
        h->buckets = calloc(n_old * 2, sizeof(*h->buckets));
        if (!h->buckets) {
                h->buckets = old;
                return;
        }
        h->n_buckets = n_old * 2;
        for (size_t i = 0; i < n_old; i++)
                while (old[i]) {
                        struct hub_entry *e = old[i];
                        size_t b = bucket_of(h, e->id);

                        old[i] = e->next;
                        e->next = h->buckets[b];
                        h->buckets[b] = e;
                }
        free(old);
}

static void entry_free(struct hub_entry *e)
{
        queue_clear(&e->kept);
        queue_clear(&e->output);
        (void) pthread_cond_destroy(&e->cond);
        free(e);
}

/* Returns the entry for id, creating it if needed. */
static int entry_get(struct hub *h, const char *id, struct hub_entry **ret)
{
        struct hub_entry *e;
        size_t b;
        int r;

        e = entry_find(h, id);
        if (e) {
                *ret = e;
                return 0;
        }
        if (h->n_entries >= HUB_MAX_ENTRIES)
                return -ENOSPC;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        r = pthread_cond_init(&e->cond, &h->condattr);
        if (r != 0) {
                free(e);
                return -r;
        }
        memcpy(e->id, id, strlen(id) + 1);
        b = bucket_of(h, id);
        e->next = h->buckets[b];
        h->buckets[b] = e;
        h->n_entries++;
        table_grow(h);
        *ret = e;
        return 0;
}

/* Frees e if nothing holds it any more: no watch, no producer at work, not retained. */
static void entry_release(struct hub *h, struct hub_entry *e)
{
        struct hub_entry **p;

        if (e->watches > 0 || e->retained || (!e->ended && e->last_seq > 0))
                return;
        for (p = &h->buckets[bucket_of(h, e->id)]; *p != e; p = &(*p)->next)
                assert(*p);
        *p = e->next;
        h->n_entries--;
        entry_free(e);
}

/* Appends to the FIFO of retained ended entries, evicting the oldest beyond HUB_RETAIN_ENDED. */
static void entry_retain(struct hub *h, struct hub_entry *e)
{
        e->retained = true;
        e->newer = NULL;
        if (h->newest_ended)
                h->newest_ended->newer = e;
        else
                h->oldest_ended = e;
        h->newest_ended = e;
        h->n_retained++;

        while (h->n_retained > HUB_RETAIN_ENDED) {
                struct hub_entry *old = h->oldest_ended;

                h->oldest_ended = old->newer;
                old->newer = NULL;
                old->retained = false;
                h->n_retained--;
                entry_release(h, old);
        }
}

/* Copies name and data into *ret, outside the lock. */
static int item_make(const char *name, const char *data, size_t len, struct hub_item *ret)
{
        char *copy;

        if (!data && len > 0)
                return -EINVAL;
        if (len > SIZE_MAX / 2)
                return -EMSGSIZE;
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        if (len > 0)
                memcpy(copy, data, len);
        copy[len] = '\0';
        *ret = (struct hub_item){.data = copy, .len = len};
        memcpy(ret->name, name, strlen(name) + 1);
        return 0;
}

static int append(struct hub *h, const char *job_id, const char *name, const char *data, size_t len)
{
        struct hub_item it = {};
        struct hub_entry *e;
        bool end = strcmp(name, "end") == 0;
        int r;

        r = item_make(name, data, len, &it);
        if (r < 0)
                return r;

        lock(h);
        r = entry_get(h, job_id, &e);
        if (r < 0)
                goto out;
        if (e->ended) {
                r = -ESTALE;
                goto out;
        }
        it.seq = e->last_seq + 1;
        r = queue_push(end || strcmp(name, "state") == 0 ? &e->kept : &e->output, &it);
        if (r < 0) {
                entry_release(h, e); /* it may have been created for this event */
                goto out;
        }
        it.data = NULL; /* the queue's now */
        e->last_seq++;
        e->cost += len + HUB_EVENT_OVERHEAD;
        while (e->cost > h->max_replay && e->output.n > 0)
                e->cost -= queue_drop(&e->output);
        if (end) {
                e->ended = true;
                entry_retain(h, e);
        }
        (void) pthread_cond_broadcast(&e->cond);
        r = 0;
out:
        unlock(h);
        free(it.data);
        return r;
}

/* ---- the hub ---- */

void hub_event_clear(struct hub_event *ev)
{
        if (!ev)
                return;
        free(ev->data);
        *ev = (struct hub_event){};
}

int hub_new(size_t max_replay_bytes, struct hub **ret)
{
        struct hub *h;
        int r;

        if (sodium_init() < 0)
                return -EIO;
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->max_replay = max_replay_bytes;
        h->n_buckets = BUCKETS_MIN;
        h->buckets = calloc(h->n_buckets, sizeof(*h->buckets));
        if (!h->buckets) {
                r = -ENOMEM;
                goto fail_hub;
        }
        randombytes_buf(h->hash_key, sizeof(h->hash_key));

        r = -pthread_condattr_init(&h->condattr);
        if (r < 0)
                goto fail_buckets;
        r = -pthread_condattr_setclock(&h->condattr, CLOCK_MONOTONIC);
        if (r < 0)
                goto fail_condattr;
        r = -pthread_cond_init(&h->work_cond, &h->condattr);
        if (r < 0)
                goto fail_condattr;
        r = -pthread_mutex_init(&h->lock, NULL);
        if (r < 0)
                goto fail_cond;
        *ret = h;
        return 0;

fail_cond:
        (void) pthread_cond_destroy(&h->work_cond);
fail_condattr:
        (void) pthread_condattr_destroy(&h->condattr);
fail_buckets:
        free(h->buckets);
fail_hub:
        free(h);
        return r;
}

struct hub *hub_free(struct hub *h)
{
        if (!h)
                return NULL;
        hub_shutdown(h);
        for (size_t i = 0; i < h->n_buckets; i++)
                while (h->buckets[i]) {
                        struct hub_entry *e = h->buckets[i];

                        h->buckets[i] = e->next;
                        entry_free(e);
                }
        free(h->buckets);
        (void) pthread_cond_destroy(&h->work_cond);
        (void) pthread_condattr_destroy(&h->condattr);
        (void) pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
}

void hub_shutdown(struct hub *h)
{
        lock(h);
        h->shutdown = true;
        (void) pthread_cond_broadcast(&h->work_cond);
        for (size_t i = 0; i < h->n_buckets; i++)
                for (struct hub_entry *e = h->buckets[i]; e; e = e->next)
                        (void) pthread_cond_broadcast(&e->cond);
        unlock(h);
}

int hub_publish(struct hub *h, const char *job_id, const char *name, const char *data, size_t len)
{
        if (!id_valid(job_id) || !name_valid(name) || strcmp(name, "end") == 0)
                return -EINVAL;
        return append(h, job_id, name, data, len);
}

int hub_end(struct hub *h, const char *job_id, const char *data, size_t len)
{
        if (!id_valid(job_id))
                return -EINVAL;
        return append(h, job_id, "end", data, len);
}

int hub_watch(struct hub *h, const char *job_id, struct hub_watch **ret)
{
        struct hub_watch *w;
        int r;

        if (!id_valid(job_id))
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        lock(h);
        r = entry_get(h, job_id, &w->entry);
        if (r >= 0) {
                w->entry->watches++;
                h->n_watches++;
        }
        unlock(h);
        if (r < 0) {
                free(w);
                return r;
        }
        w->hub = h;
        *ret = w;
        return 0;
}

struct hub_watch *hub_unwatch(struct hub_watch *w)
{
        struct hub *h;

        if (!w)
                return NULL;
        h = w->hub;
        lock(h);
        assert(w->entry->watches > 0);
        w->entry->watches--;
        h->n_watches--;
        entry_release(h, w->entry);
        unlock(h);
        free(w);
        return NULL;
}

int hub_next(struct hub_watch *w, uint64_t *cursor, uint64_t timeout_ns, struct hub_event *ret,
             bool *ret_gap)
{
        struct hub *h = w->hub;
        struct hub_entry *e = w->entry;
        struct deadline d = {.timeout_ns = timeout_ns};
        int r;

        lock(h);
        for (;;) {
                const struct hub_item *a, *b, *it;

                if (h->shutdown) {
                        r = -ESHUTDOWN;
                        break;
                }
                a = queue_after(&e->kept, *cursor);
                b = queue_after(&e->output, *cursor);
                it = !a ? b : !b ? a : a->seq < b->seq ? a : b;
                if (it) {
                        char *copy = malloc(it->len + 1);

                        if (!copy) {
                                r = -ENOMEM;
                                break;
                        }
                        memcpy(copy, it->data, it->len + 1);
                        *ret = (struct hub_event){.seq = it->seq, .data = copy, .len = it->len};
                        memcpy(ret->name, it->name, sizeof(ret->name));
                        if (ret_gap)
                                *ret_gap = it->seq != *cursor + 1;
                        *cursor = it->seq;
                        r = 0;
                        break;
                }
                if (e->ended && *cursor >= e->last_seq) {
                        r = -ENODATA;
                        break;
                }
                r = wait_on(h, &e->cond, &d);
                if (r < 0)
                        break;
        }
        unlock(h);
        return r;
}

int hub_wait_end(struct hub_watch *w, uint64_t timeout_ns)
{
        struct hub *h = w->hub;
        struct deadline d = {.timeout_ns = timeout_ns};
        int r;

        lock(h);
        for (;;) {
                if (h->shutdown) {
                        r = -ESHUTDOWN;
                        break;
                }
                if (w->entry->ended) {
                        r = 0;
                        break;
                }
                r = wait_on(h, &w->entry->cond, &d);
                if (r < 0)
                        break;
        }
        unlock(h);
        return r;
}

bool hub_ended(struct hub_watch *w)
{
        bool ended;

        lock(w->hub);
        ended = w->entry->ended;
        unlock(w->hub);
        return ended;
}

void hub_notify_work(struct hub *h)
{
        lock(h);
        if (h->work < UINT64_MAX)
                h->work++;
        (void) pthread_cond_signal(&h->work_cond);
        unlock(h);
}

int hub_wait_work(struct hub *h, uint64_t timeout_ns)
{
        struct deadline d = {.timeout_ns = timeout_ns};
        int r;

        lock(h);
        for (;;) {
                if (h->shutdown) {
                        r = -ESHUTDOWN;
                        break;
                }
                if (h->work > 0) {
                        h->work--;
                        r = 0;
                        break;
                }
                r = wait_on(h, &h->work_cond, &d);
                if (r < 0)
                        break;
        }
        unlock(h);
        return r;
}

void hub_get_stats(struct hub *h, struct hub_stats *ret)
{
        lock(h);
        *ret = (struct hub_stats){
                .entries = h->n_entries,
                .retained = h->n_retained,
                .watches = h->n_watches,
                .waiters = h->n_waiters,
                .work = h->work,
        };
        unlock(h);
}
