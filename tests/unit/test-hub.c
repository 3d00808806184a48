/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "node/hub.h"
#include "unit.h"

/*
 * Threads other than the test's own never call cmocka's asserts (they longjmp on the wrong
 * stack): they record what they saw, and the test checks it after joining them. A test that
 * needs another thread to be blocked in a wait before it acts waits for the hub to say so
 * (hub_get_stats().waiters), never for a while.
 */

#define LONG_NS   (UINT64_C(10) * 1000000000) /* a wait that should never run out */
#define STRESS_NS (UINT64_C(60) * 1000000000)

/* Also called by the stress test's threads: no assert. */
static void job_id(unsigned n, char out[static 33])
{
        (void) snprintf(out, 33, "%032x", n);
}

/* Until at least n threads are blocked in the hub's waits (bounded). */
static void wait_for_waiters(struct hub *h, size_t n)
{
        uint64_t until = now_ns(CLOCK_MONOTONIC) + LONG_NS;
        struct hub_stats st;

        for (;;) {
                hub_get_stats(h, &st);
                if (st.waiters >= n)
                        return;
                assert_true(now_ns(CLOCK_MONOTONIC) < until);
                (void) sched_yield();
        }
}

static void expect_event(struct hub_watch *w, uint64_t *cursor, uint64_t seq, const char *name,
                         const char *data, bool gap)
{
        struct hub_event ev = {};
        bool got_gap = !gap;

        assert_int_equal(hub_next(w, cursor, 0, &ev, &got_gap), 0);
        assert_int_equal(ev.seq, seq);
        assert_int_equal(*cursor, seq);
        assert_string_equal(ev.name, name);
        assert_int_equal(ev.len, strlen(data));
        assert_string_equal(ev.data, data);
        assert_true(got_gap == gap);
        hub_event_clear(&ev);
}

static void test_bad_ids(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        struct hub_watch *w = NULL;
        char long_id[HUB_ID_MAX + 2];
        const char *bad[] = {"", "a/b", "a b", "../x", "a\nb", "caf\xc3\xa9", long_id};

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);

        memset(long_id, 'a', HUB_ID_MAX + 1);
        long_id[HUB_ID_MAX + 1] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(hub_publish(h, bad[i], "state", "{}", 2), -EINVAL);
                assert_int_equal(hub_end(h, bad[i], "{}", 2), -EINVAL);
                assert_int_equal(hub_watch(h, bad[i], &w), -EINVAL);
                assert_null(w);
        }
        assert_int_equal(hub_publish(h, NULL, "state", "{}", 2), -EINVAL);
        assert_int_equal(hub_end(h, NULL, "{}", 2), -EINVAL);
        assert_int_equal(hub_watch(h, NULL, &w), -EINVAL);

        /* HUB_ID_MAX bytes is still an id. */
        long_id[HUB_ID_MAX] = '\0';
        assert_int_equal(hub_publish(h, long_id, "state", "{}", 2), 0);
        assert_int_equal(hub_watch(h, long_id, &w), 0);
        w = hub_unwatch(w);
        assert_null(w);

        /* Names: not "end" (hub_end's), short, plain. Data: NULL only when empty. */
        assert_int_equal(hub_publish(h, "j1", "end", "{}", 2), -EINVAL);
        assert_int_equal(hub_publish(h, "j1", "", "{}", 2), -EINVAL);
        assert_int_equal(hub_publish(h, "j1", NULL, "{}", 2), -EINVAL);
        assert_int_equal(hub_publish(h, "j1", "Output", "{}", 2), -EINVAL);
        assert_int_equal(hub_publish(h, "j1", "out:put", "{}", 2), -EINVAL);
        assert_int_equal(hub_publish(h, "j1", "a\nb", "{}", 2), -EINVAL);
        assert_int_equal(hub_publish(h, "j1", "abcdefghijklmnop", "{}", 2), -EINVAL);
        assert_int_equal(hub_publish(h, "j1", "abcdefghijklmno", "{}", 2), 0);
        assert_int_equal(hub_publish(h, "j1", "output", NULL, 3), -EINVAL);
        assert_int_equal(hub_publish(h, "j1", "output", NULL, 0), 0);
        assert_int_equal(hub_end(h, "j2", NULL, 1), -EINVAL);

        {
                _cleanup_(hub_unwatchp) struct hub_watch *w1 = NULL;
                uint64_t cursor = 0;

                assert_int_equal(hub_watch(h, "j1", &w1), 0);
                expect_event(w1, &cursor, 1, "abcdefghijklmno", "{}", false);
                expect_event(w1, &cursor, 2, "output", "", false);
        }
        assert_null(hub_free(NULL));
        assert_null(hub_unwatch(NULL));
        hub_event_clear(NULL);
}

static void test_publish_next_order(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL;
        char data[] = "{\"state\":\"running\"}";
        struct hub_event ev = {};
        uint64_t cursor = 0;
        struct hub_stats st;

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);
        assert_int_equal(hub_watch(h, "job", &w), 0);
        assert_false(hub_ended(w));
        assert_int_equal(hub_next(w, &cursor, 0, &ev, NULL), -ETIMEDOUT);

        assert_int_equal(hub_publish(h, "job", "state", data, strlen(data)), 0);
        data[2] = 'X'; /* the hub holds its own copy */
        /* len, not a NUL, ends the data */
        assert_int_equal(hub_publish(h, "job", "output", "{\"text\":\"a\"}trailing", 12), 0);
        assert_int_equal(hub_publish(h, "job", "output", "{\"text\":\"b\"}", 12), 0);
        assert_int_equal(hub_publish(h, "other", "output", "{\"text\":\"z\"}", 12), 0);

        expect_event(w, &cursor, 1, "state", "{\"state\":\"running\"}", false);
        expect_event(w, &cursor, 2, "output", "{\"text\":\"a\"}", false);
        expect_event(w, &cursor, 3, "output", "{\"text\":\"b\"}", false);
        assert_int_equal(hub_next(w, &cursor, 0, &ev, NULL), -ETIMEDOUT);
        assert_int_equal(cursor, 3);

        /* A cursor can go back: the events are still there. */
        cursor = 1;
        expect_event(w, &cursor, 2, "output", "{\"text\":\"a\"}", false);

        /* hub_event_clear() leaves an empty event. */
        cursor = 0;
        assert_int_equal(hub_next(w, &cursor, 0, &ev, NULL), 0);
        hub_event_clear(&ev);
        assert_null(ev.data);
        assert_int_equal(ev.len, 0);
        assert_int_equal(ev.seq, 0);

        hub_get_stats(h, &st);
        assert_int_equal(st.entries, 2);
        assert_int_equal(st.watches, 1);
        assert_int_equal(st.waiters, 0);
        assert_int_equal(st.retained, 0);
}

static void test_late_follower_replays(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL;
        struct hub_event ev = {};
        uint64_t cursor = 0;
        char buf[64];

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);
        assert_int_equal(hub_publish(h, "late", "state", "{\"state\":\"running\"}", 19), 0);
        for (int i = 0; i < 100; i++) {
                int n = snprintf(buf, sizeof(buf), "{\"text\":\"%d\"}", i);

                assert_int_equal(hub_publish(h, "late", "output", buf, (size_t) n), 0);
        }
        assert_int_equal(hub_end(h, "late", "{\"state\":\"finished\"}", 20), 0);

        assert_int_equal(hub_watch(h, "late", &w), 0);
        assert_true(hub_ended(w));
        assert_int_equal(hub_wait_end(w, 0), 0);
        expect_event(w, &cursor, 1, "state", "{\"state\":\"running\"}", false);
        for (int i = 0; i < 100; i++) {
                (void) snprintf(buf, sizeof(buf), "{\"text\":\"%d\"}", i);
                expect_event(w, &cursor, (uint64_t) i + 2, "output", buf, false);
        }
        expect_event(w, &cursor, 102, "end", "{\"state\":\"finished\"}", false);
        /* Nothing can follow an end: said at once, whatever the timeout. */
        assert_int_equal(hub_next(w, &cursor, HUB_FOREVER, &ev, NULL), -ENODATA);
        cursor = 500;
        assert_int_equal(hub_next(w, &cursor, HUB_FOREVER, &ev, NULL), -ENODATA);
        assert_int_equal(cursor, 500);
}

struct waiter {
        struct hub *hub;
        struct hub_watch *watch;
        uint64_t timeout_ns;
        int r;
        uint64_t cursor;
        struct hub_event ev;
        bool gap;
};

static void *next_thread(void *arg)
{
        struct waiter *wt = arg;

        wt->r = hub_next(wt->watch, &wt->cursor, wt->timeout_ns, &wt->ev, &wt->gap);
        return NULL;
}

static void *wait_end_thread(void *arg)
{
        struct waiter *wt = arg;

        wt->r = hub_wait_end(wt->watch, wt->timeout_ns);
        return NULL;
}

static void *wait_work_thread(void *arg)
{
        struct waiter *wt = arg;

        wt->r = hub_wait_work(wt->hub, wt->timeout_ns);
        return NULL;
}

static void test_follower_woken(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL;
        struct waiter wt = {.timeout_ns = LONG_NS, .r = 1};
        pthread_t t;

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);
        assert_int_equal(hub_watch(h, "live", &w), 0);
        wt.watch = w;
        assert_int_equal(pthread_create(&t, NULL, next_thread, &wt), 0);
        wait_for_waiters(h, 1);

        /* Another job's event wakes nobody. */
        assert_int_equal(hub_publish(h, "elsewhere", "output", "{}", 2), 0);
        assert_int_equal(hub_publish(h, "live", "output", "{\"text\":\"hi\"}", 13), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(wt.r, 0);
        assert_int_equal(wt.cursor, 1);
        assert_int_equal(wt.ev.seq, 1);
        assert_false(wt.gap);
        assert_string_equal(wt.ev.name, "output");
        assert_string_equal(wt.ev.data, "{\"text\":\"hi\"}");
        hub_event_clear(&wt.ev);

        /* And again with no deadline at all. */
        wt.timeout_ns = HUB_FOREVER;
        wt.r = 1;
        assert_int_equal(pthread_create(&t, NULL, next_thread, &wt), 0);
        wait_for_waiters(h, 1);
        assert_int_equal(hub_end(h, "live", "{}", 2), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(wt.r, 0);
        assert_int_equal(wt.ev.seq, 2);
        assert_string_equal(wt.ev.name, "end");
        hub_event_clear(&wt.ev);
}

static void test_end_and_wait_end(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        _cleanup_(hub_unwatchp) struct hub_watch *before = NULL, *after = NULL;
        struct waiter wt = {.timeout_ns = LONG_NS, .r = 1};
        uint64_t cursor = 0;
        pthread_t t;

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);

        /* Watched before the end: hub_wait_end blocks until it comes. */
        assert_int_equal(hub_watch(h, "job", &before), 0);
        assert_int_equal(hub_wait_end(before, 0), -ETIMEDOUT);
        assert_int_equal(hub_publish(h, "job", "state", "{\"state\":\"running\"}", 19), 0);
        wt.watch = before;
        assert_int_equal(pthread_create(&t, NULL, wait_end_thread, &wt), 0);
        wait_for_waiters(h, 1);
        assert_false(hub_ended(before));
        assert_int_equal(hub_end(h, "job", "{\"id\":\"job\"}", 12), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(wt.r, 0);
        assert_true(hub_ended(before));

        /* Ended is final. */
        assert_int_equal(hub_publish(h, "job", "output", "{}", 2), -ESTALE);
        assert_int_equal(hub_end(h, "job", "{}", 2), -ESTALE);

        /* Watched after the end: at once. */
        assert_int_equal(hub_watch(h, "job", &after), 0);
        assert_true(hub_ended(after));
        assert_int_equal(hub_wait_end(after, 0), 0);
        assert_int_equal(hub_wait_end(after, HUB_FOREVER), 0);
        expect_event(after, &cursor, 1, "state", "{\"state\":\"running\"}", false);
        expect_event(after, &cursor, 2, "end", "{\"id\":\"job\"}", false);

        /* An end with nothing before it (a job cancelled while queued). */
        after = hub_unwatch(after);
        assert_int_equal(hub_end(h, "quick", "{}", 2), 0);
        assert_int_equal(hub_watch(h, "quick", &after), 0);
        assert_int_equal(hub_wait_end(after, 0), 0);
        cursor = 0;
        expect_event(after, &cursor, 1, "end", "{}", false);
}

/* Data of exactly len bytes: "<tag>" then dots. */
static void fill(char *buf, size_t len, const char *tag)
{
        size_t n = strlen(tag);

        assert_true(n <= len);
        memcpy(buf, tag, n);
        memset(buf + n, '.', len - n);
        buf[len] = '\0';
}

static void test_replay_bound(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL, *live = NULL;
        const size_t cost = 100 + HUB_EVENT_OVERHEAD;
        struct hub_event ev = {};
        uint64_t cursor = 0, live_cursor = 0;
        char buf[101], tag[16];

        /* Room for ten events of 100 bytes. */
        assert_int_equal(hub_new(10 * cost, &h), 0);
        assert_int_equal(hub_watch(h, "job", &live), 0);

        fill(buf, 100, "s1");
        assert_int_equal(hub_publish(h, "job", "state", buf, 100), 0);
        for (unsigned i = 2; i <= 21; i++) {
                (void) snprintf(tag, sizeof(tag), "o%u", i);
                fill(buf, 100, tag);
                assert_int_equal(hub_publish(h, "job", "output", buf, 100), 0);
                if (i == 5) {
                        /* A live follower reads up to here, then falls behind. */
                        fill(buf, 100, "s1");
                        expect_event(live, &live_cursor, 1, "state", buf, false);
                        for (unsigned k = 2; k <= 5; k++) {
                                (void) snprintf(tag, sizeof(tag), "o%u", k);
                                fill(buf, 100, tag);
                                expect_event(live, &live_cursor, k, "output", buf, false);
                        }
                }
        }
        fill(buf, 100, "s22");
        assert_int_equal(hub_publish(h, "job", "state", buf, 100), 0);
        fill(buf, 100, "end");
        assert_int_equal(hub_end(h, "job", buf, 100), 0);

        /*
         * 23 events, room for 10: the three kept ones (two states, the end) and the seven newest
         * outputs, 15..21.
         */
        assert_int_equal(hub_watch(h, "job", &w), 0);
        fill(buf, 100, "s1");
        expect_event(w, &cursor, 1, "state", buf, false);
        fill(buf, 100, "o15");
        expect_event(w, &cursor, 15, "output", buf, true);
        for (unsigned k = 16; k <= 21; k++) {
                (void) snprintf(tag, sizeof(tag), "o%u", k);
                fill(buf, 100, tag);
                expect_event(w, &cursor, k, "output", buf, false);
        }
        fill(buf, 100, "s22");
        expect_event(w, &cursor, 22, "state", buf, false);
        fill(buf, 100, "end");
        expect_event(w, &cursor, 23, "end", buf, false);
        assert_int_equal(hub_next(w, &cursor, 0, &ev, NULL), -ENODATA);

        /* The follower that fell behind learns of the gap where it resumes. */
        fill(buf, 100, "o15");
        expect_event(live, &live_cursor, 15, "output", buf, true);

        /* Any cursor inside the dropped range resumes at 15, with a gap. */
        cursor = 7;
        fill(buf, 100, "o15");
        expect_event(w, &cursor, 15, "output", buf, true);
}

static void test_replay_oversized(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL;
        _cleanup_free_ char *big = malloc(2001);
        struct hub_event ev = {};
        uint64_t cursor = 0;

        assert_non_null(big);
        fill(big, 2000, "big");
        assert_int_equal(hub_new(1000, &h), 0);
        assert_int_equal(hub_watch(h, "job", &w), 0);

        /* Larger than the whole bound: gone at once; nothing to return yet. */
        assert_int_equal(hub_publish(h, "job", "output", big, 2000), 0);
        assert_int_equal(hub_next(w, &cursor, 0, &ev, NULL), -ETIMEDOUT);
        assert_int_equal(cursor, 0);

        /* States are kept even beyond the bound; the gap shows at the next event kept. */
        assert_int_equal(hub_publish(h, "job", "state", big, 2000), 0);
        expect_event(w, &cursor, 2, "state", big, true);
        assert_int_equal(hub_end(h, "job", big, 2000), 0);
        expect_event(w, &cursor, 3, "end", big, false);
}

static void test_retention(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL, *held = NULL;
        struct hub_event ev = {};
        struct hub_stats st;
        uint64_t cursor = 0;
        char id[33];

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);

        /* "first" ends unwatched; "held" ends watched and stays watched. */
        assert_int_equal(hub_publish(h, "first", "state", "{}", 2), 0);
        assert_int_equal(hub_end(h, "first", "{\"n\":1}", 7), 0);
        assert_int_equal(hub_watch(h, "held", &held), 0);
        assert_int_equal(hub_end(h, "held", "{\"n\":2}", 7), 0);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, 2);
        assert_int_equal(st.retained, 2);

        /* HUB_RETAIN_ENDED - 1 later ends: "first" is still there for a late follower. */
        for (unsigned i = 0; i < HUB_RETAIN_ENDED - 2; i++) {
                job_id(i, id);
                assert_int_equal(hub_end(h, id, "{}", 2), 0);
        }
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, HUB_RETAIN_ENDED);
        assert_int_equal(st.retained, HUB_RETAIN_ENDED);
        assert_int_equal(hub_watch(h, "first", &w), 0);
        assert_true(hub_ended(w));
        expect_event(w, &cursor, 1, "state", "{}", false);
        expect_event(w, &cursor, 2, "end", "{\"n\":1}", false);
        w = hub_unwatch(w);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, HUB_RETAIN_ENDED);

        /* The HUB_RETAIN_ENDED-th later end evicts it. */
        job_id(HUB_RETAIN_ENDED, id);
        assert_int_equal(hub_end(h, id, "{}", 2), 0);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, HUB_RETAIN_ENDED);
        assert_int_equal(st.retained, HUB_RETAIN_ENDED);

        /* A watch now finds a fresh entry (the store says how the job ended), gone with it. */
        assert_int_equal(hub_watch(h, "first", &w), 0);
        assert_false(hub_ended(w));
        cursor = 0;
        assert_int_equal(hub_next(w, &cursor, 0, &ev, NULL), -ETIMEDOUT);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, HUB_RETAIN_ENDED + 1);
        w = hub_unwatch(w);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, HUB_RETAIN_ENDED);

        /* One more end: "held" leaves the retained set but lives on while watched. */
        job_id(HUB_RETAIN_ENDED + 1, id);
        assert_int_equal(hub_end(h, id, "{}", 2), 0);
        hub_get_stats(h, &st);
        assert_int_equal(st.retained, HUB_RETAIN_ENDED);
        assert_int_equal(st.entries, HUB_RETAIN_ENDED + 1);
        assert_true(hub_ended(held));
        assert_int_equal(hub_wait_end(held, 0), 0);
        cursor = 0;
        expect_event(held, &cursor, 1, "end", "{\"n\":2}", false);
        assert_int_equal(hub_end(h, "held", "{}", 2), -ESTALE);
        held = hub_unwatch(held);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, HUB_RETAIN_ENDED);
        assert_int_equal(st.watches, 0);
}

static void test_unwatched_entries(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        struct hub_watch *w = NULL;
        struct hub_stats st;

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);

        /* A watch on a job nobody publishes: the entry goes with the watch. */
        assert_int_equal(hub_watch(h, "quiet", &w), 0);
        w = hub_unwatch(w);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, 0);

        /* A job in progress stays, watched or not, until it ends. */
        assert_int_equal(hub_publish(h, "busy", "state", "{}", 2), 0);
        assert_int_equal(hub_watch(h, "busy", &w), 0);
        w = hub_unwatch(w);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, 1);
        assert_int_equal(st.retained, 0);
        assert_int_equal(hub_end(h, "busy", "{}", 2), 0);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, 1);
        assert_int_equal(st.retained, 1);
}

static void test_work_semaphore(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        struct waiter wt[4];
        pthread_t t[4];
        struct hub_stats st;

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);

        /* Notifies ahead of the waits are kept, one per wait. */
        for (int i = 0; i < 3; i++)
                hub_notify_work(h);
        hub_get_stats(h, &st);
        assert_int_equal(st.work, 3);
        for (int i = 0; i < 3; i++)
                assert_int_equal(hub_wait_work(h, 0), 0);
        assert_int_equal(hub_wait_work(h, 0), -ETIMEDOUT);

        /* Four blocked runners, four notifies: each wakes with its own. */
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                wt[i] = (struct waiter){.hub = h, .timeout_ns = LONG_NS, .r = 1};
                assert_int_equal(pthread_create(&t[i], NULL, wait_work_thread, &wt[i]), 0);
        }
        wait_for_waiters(h, ELEMENTSOF(t));
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                hub_notify_work(h);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(wt[i].r, 0);
        }
        hub_get_stats(h, &st);
        assert_int_equal(st.work, 0);
        assert_int_equal(hub_wait_work(h, 0), -ETIMEDOUT);
}

struct work_loop {
        struct hub *hub;
        unsigned n;
        unsigned got;
};

static void *work_loop_thread(void *arg)
{
        struct work_loop *wl = arg;

        for (unsigned i = 0; i < wl->n; i++)
                if (hub_wait_work(wl->hub, LONG_NS) == 0)
                        wl->got++;
        return NULL;
}

/* Racing notifies and waits: the count is exact. */
static void test_work_semaphore_race(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        struct work_loop wl[8];
        pthread_t t[8];
        struct hub_stats st;

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                wl[i] = (struct work_loop){.hub = h, .n = 50};
                assert_int_equal(pthread_create(&t[i], NULL, work_loop_thread, &wl[i]), 0);
        }
        for (size_t i = 0; i < ELEMENTSOF(t) * 50; i++)
                hub_notify_work(h);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(wl[i].got, 50);
        }
        hub_get_stats(h, &st);
        assert_int_equal(st.work, 0);
}

static void test_shutdown(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL;
        struct waiter wt[3];
        void *(*fn[3])(void *) = {next_thread, wait_end_thread, wait_work_thread};
        struct hub_event ev = {};
        uint64_t cursor = 0;
        pthread_t t[3];

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);
        assert_int_equal(hub_watch(h, "job", &w), 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                wt[i] = (struct waiter){.hub = h, .watch = w, .timeout_ns = HUB_FOREVER, .r = 1};
                assert_int_equal(pthread_create(&t[i], NULL, fn[i], &wt[i]), 0);
        }
        wait_for_waiters(h, ELEMENTSOF(t));
        hub_shutdown(h);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(wt[i].r, -ESHUTDOWN);
        }

        /* Later waits too, at once, even with something to return. */
        assert_int_equal(hub_publish(h, "job", "state", "{}", 2), 0);
        assert_int_equal(hub_next(w, &cursor, HUB_FOREVER, &ev, NULL), -ESHUTDOWN);
        assert_int_equal(hub_wait_end(w, HUB_FOREVER), -ESHUTDOWN);
        hub_notify_work(h);
        assert_int_equal(hub_wait_work(h, HUB_FOREVER), -ESHUTDOWN);
        hub_shutdown(h); /* again: harmless */
}

static void test_timeouts(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL;
        const uint64_t t = 20 * 1000000;
        struct hub_event ev = {};
        uint64_t cursor = 0, start;

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);
        assert_int_equal(hub_watch(h, "job", &w), 0);

        start = now_ns(CLOCK_MONOTONIC);
        assert_int_equal(hub_next(w, &cursor, t, &ev, NULL), -ETIMEDOUT);
        assert_true(now_ns(CLOCK_MONOTONIC) - start >= t);
        assert_int_equal(cursor, 0);

        start = now_ns(CLOCK_MONOTONIC);
        assert_int_equal(hub_wait_end(w, t), -ETIMEDOUT);
        assert_true(now_ns(CLOCK_MONOTONIC) - start >= t);

        start = now_ns(CLOCK_MONOTONIC);
        assert_int_equal(hub_wait_work(h, t), -ETIMEDOUT);
        assert_true(now_ns(CLOCK_MONOTONIC) - start >= t);

        /* Zero: a look, no wait. */
        assert_int_equal(hub_next(w, &cursor, 0, &ev, NULL), -ETIMEDOUT);
        assert_int_equal(hub_wait_end(w, 0), -ETIMEDOUT);
        assert_int_equal(hub_wait_work(h, 0), -ETIMEDOUT);

        /* A timeout too large for a deadline is no timeout, not an overflow into the past. */
        assert_int_equal(hub_publish(h, "job", "state", "{}", 2), 0);
        assert_int_equal(hub_next(w, &cursor, UINT64_MAX - 1, &ev, NULL), 0);
        hub_event_clear(&ev);
}

static void test_entry_limit(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        struct hub_watch **ws = calloc(HUB_MAX_ENTRIES, sizeof(*ws));
        struct hub_watch *w = NULL;
        struct hub_stats st;
        char id[33];

        assert_non_null(ws);
        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);
        for (unsigned i = 0; i < HUB_MAX_ENTRIES; i++) {
                job_id(i, id);
                assert_int_equal(hub_watch(h, id, &ws[i]), 0);
        }
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, HUB_MAX_ENTRIES);

        /* Full: nothing new, but the existing entries work. */
        job_id(HUB_MAX_ENTRIES, id);
        assert_int_equal(hub_watch(h, id, &w), -ENOSPC);
        assert_int_equal(hub_publish(h, id, "state", "{}", 2), -ENOSPC);
        assert_int_equal(hub_end(h, id, "{}", 2), -ENOSPC);
        job_id(7, id);
        assert_int_equal(hub_publish(h, id, "state", "{}", 2), 0);
        assert_int_equal(hub_watch(h, id, &w), 0);
        w = hub_unwatch(w);

        /* One freed, one room. */
        ws[3] = hub_unwatch(ws[3]);
        job_id(HUB_MAX_ENTRIES, id);
        assert_int_equal(hub_watch(h, id, &w), 0);
        job_id(HUB_MAX_ENTRIES + 1, id);
        assert_int_equal(hub_publish(h, id, "state", "{}", 2), -ENOSPC);
        w = hub_unwatch(w);

        for (unsigned i = 0; i < HUB_MAX_ENTRIES; i++)
                ws[i] = hub_unwatch(ws[i]);
        free(ws);
        hub_get_stats(h, &st);
        assert_int_equal(st.entries, 1); /* job 7, which has events and has not ended */
        assert_int_equal(st.watches, 0);
}

/* ---- stress ---- */

#define STRESS_JOBS       50
#define STRESS_EVENTS     200
#define STRESS_PUBLISHERS 4
#define STRESS_FOLLOWERS  8

struct stress {
        struct hub *hub;
        pthread_barrier_t start;
};

struct stress_thread {
        struct stress *s;
        unsigned index;
        unsigned errors;
        unsigned jobs_seen;
        pthread_t thread;
};

static void stress_data(unsigned job, unsigned k, char *buf, size_t size)
{
        (void) snprintf(buf, size, "{\"job\":%u,\"k\":%u}", job, k);
}

static const char *stress_name(unsigned k)
{
        return k % 10 == 1 ? "state" : "output";
}

/* Publisher p feeds the jobs j = p (mod STRESS_PUBLISHERS), interleaved, then ends them. */
static void *publisher_thread(void *arg)
{
        struct stress_thread *t = arg;
        char id[33], buf[64];

        (void) pthread_barrier_wait(&t->s->start);
        for (unsigned k = 1; k <= STRESS_EVENTS; k++)
                for (unsigned j = t->index; j < STRESS_JOBS; j += STRESS_PUBLISHERS) {
                        job_id(j, id);
                        stress_data(j, k, buf, sizeof(buf));
                        if (hub_publish(t->s->hub, id, stress_name(k), buf, strlen(buf)) < 0)
                                t->errors++;
                }
        for (unsigned j = t->index; j < STRESS_JOBS; j += STRESS_PUBLISHERS) {
                job_id(j, id);
                stress_data(j, 0, buf, sizeof(buf));
                if (hub_end(t->s->hub, id, buf, strlen(buf)) < 0)
                        t->errors++;
        }
        return NULL;
}

/* Follows one job from its start to its end: every event, in order, once. */
static unsigned follow(struct hub *h, unsigned j)
{
        _cleanup_(hub_unwatchp) struct hub_watch *w = NULL;
        unsigned errors = 0;
        uint64_t cursor = 0;
        char id[33], buf[64];

        job_id(j, id);
        if (hub_watch(h, id, &w) < 0)
                return 1;
        for (unsigned k = 1; k <= STRESS_EVENTS + 1; k++) {
                struct hub_event ev = {};
                bool gap = true;

                if (hub_next(w, &cursor, STRESS_NS, &ev, &gap) < 0)
                        return errors + 1;
                stress_data(j, k <= STRESS_EVENTS ? k : 0, buf, sizeof(buf));
                if (gap || ev.seq != k || cursor != k || strcmp(ev.data, buf) != 0 ||
                    ev.len != strlen(buf) ||
                    strcmp(ev.name, k <= STRESS_EVENTS ? stress_name(k) : "end") != 0)
                        errors++;
                hub_event_clear(&ev);
        }
        {
                struct hub_event ev = {};

                if (hub_next(w, &cursor, STRESS_NS, &ev, NULL) != -ENODATA)
                        errors++;
                hub_event_clear(&ev);
        }
        if (hub_wait_end(w, 0) != 0 || !hub_ended(w))
                errors++;
        return errors;
}

/*
 * Two followers per job (f and f + STRESS_FOLLOWERS / 2 follow the same jobs, one from the
 * first of them, one from the last), so that some watch before the first event, some while the
 * job runs, and some after it ended.
 */
static void *follower_thread(void *arg)
{
        struct stress_thread *t = arg;
        unsigned half = STRESS_FOLLOWERS / 2, first = t->index % half;
        unsigned jobs[STRESS_JOBS], n = 0;

        for (unsigned j = first; j < STRESS_JOBS; j += half)
                jobs[n++] = j;
        (void) pthread_barrier_wait(&t->s->start);
        for (unsigned i = 0; i < n; i++) {
                unsigned j = t->index < half ? jobs[i] : jobs[n - 1 - i];

                t->errors += follow(t->s->hub, j);
                t->jobs_seen++;
        }
        return NULL;
}

static void test_stress(void **state)
{
        _cleanup_(hub_freep) struct hub *h = NULL;
        struct stress s = {};
        struct stress_thread pub[STRESS_PUBLISHERS] = {}, fol[STRESS_FOLLOWERS] = {};
        unsigned seen = 0;
        struct hub_stats st;

        assert_int_equal(hub_new(HUB_DEFAULT_REPLAY, &h), 0);
        s.hub = h;
        assert_int_equal(pthread_barrier_init(&s.start, NULL, STRESS_PUBLISHERS + STRESS_FOLLOWERS),
                         0);
        for (unsigned i = 0; i < STRESS_FOLLOWERS; i++) {
                fol[i] = (struct stress_thread){.s = &s, .index = i};
                assert_int_equal(pthread_create(&fol[i].thread, NULL, follower_thread, &fol[i]), 0);
        }
        for (unsigned i = 0; i < STRESS_PUBLISHERS; i++) {
                pub[i] = (struct stress_thread){.s = &s, .index = i};
                assert_int_equal(pthread_create(&pub[i].thread, NULL, publisher_thread, &pub[i]),
                                 0);
        }
        for (unsigned i = 0; i < STRESS_PUBLISHERS; i++) {
                assert_int_equal(pthread_join(pub[i].thread, NULL), 0);
                assert_int_equal(pub[i].errors, 0);
        }
        for (unsigned i = 0; i < STRESS_FOLLOWERS; i++) {
                assert_int_equal(pthread_join(fol[i].thread, NULL), 0);
                assert_int_equal(fol[i].errors, 0);
                seen += fol[i].jobs_seen;
        }
        assert_int_equal(seen, 2 * STRESS_JOBS);
        assert_int_equal(pthread_barrier_destroy(&s.start), 0);

        hub_get_stats(h, &st);
        assert_int_equal(st.entries, STRESS_JOBS);
        assert_int_equal(st.retained, STRESS_JOBS);
        assert_int_equal(st.watches, 0);
        assert_int_equal(st.waiters, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bad_ids),
                cmocka_unit_test(test_publish_next_order),
                cmocka_unit_test(test_late_follower_replays),
                cmocka_unit_test(test_follower_woken),
                cmocka_unit_test(test_end_and_wait_end),
                cmocka_unit_test(test_replay_bound),
                cmocka_unit_test(test_replay_oversized),
                cmocka_unit_test(test_retention),
                cmocka_unit_test(test_unwatched_entries),
                cmocka_unit_test(test_work_semaphore),
                cmocka_unit_test(test_work_semaphore_race),
                cmocka_unit_test(test_shutdown),
                cmocka_unit_test(test_timeouts),
                cmocka_unit_test(test_entry_limit),
                cmocka_unit_test(test_stress),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
