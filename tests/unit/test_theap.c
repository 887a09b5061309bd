/* test_theap.c - the timer heap shared by the engine's state machines.
 *
 * The randomized tests run the heap against a reference: an array kept
 * sorted by (at, push order), into which each timer is inserted after
 * every timer that is not later than it, so timers due at the same ms keep
 * their push order. Deadlines come from a small range, so most pops break
 * ties; compaction and trimming remove the same timers from both. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/sb.h"
#include "base/theap.h"

/* ---- helpers ---- */

static uint64_t rng = 0x7469636b;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void assert_same(const sb_timer *a, const sb_timer *b)
{
    assert_int_equal(a->at, b->at);
    assert_int_equal(a->key, b->key);
    assert_int_equal(a->aux, b->aux);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->gen, b->gen);
    assert_int_equal(a->kind, b->kind);
}

/* The heap property, checked the long way: no timer comes out before its
 * parent. */
static void assert_heap(const sb_theap *h, bool (*before)(const sb_timer *, const sb_timer *))
{
    for (size_t i = 1; i < h->n; i++)
        assert_false(before(&h->v[i], &h->v[(i - 1) / 2]));
}

static bool by_at_seq(const sb_timer *a, const sb_timer *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

#define NKEYS 97

static bool cancelled[NKEYS];

static bool keep_live(const sb_timer *t, void *ctx)
{
    (*(int *)ctx)++;
    return !cancelled[t->key % NKEYS];
}

/* ---- the reference: sorted by (at, seq) ---- */

#define STEPS 200000

/* Room for every timer a run can push (one a step at most). */
typedef struct reference {
    sb_timer *v;
    size_t n;
} reference;

static void ref_push(reference *r, sb_timer t)
{
    size_t i = r->n;
    while (i > 0 && r->v[i - 1].at > t.at) {
        r->v[i] = r->v[i - 1];
        i--;
    }
    r->v[i] = t;
    r->n++;
}

static sb_timer ref_pop(reference *r)
{
    sb_timer t = r->v[0];
    memmove(r->v, r->v + 1, --r->n * sizeof *r->v);
    return t;
}

static void ref_filter(reference *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (!cancelled[r->v[i].key % NKEYS])
            r->v[n++] = r->v[i];
    r->n = n;
}

/* ---- tests ---- */

static void test_empty(void **state)
{
    sb_theap h;
    sb_theap_init(&h, NULL);
    int calls = 0;
    sb_timer t = {.at = 7};
    assert_int_equal(sb_theap_len(&h), 0);
    assert_null(sb_theap_peek(&h));
    assert_int_equal(sb_theap_next_at(&h), INT64_MAX);
    assert_false(sb_theap_pop(&h, &t));
    assert_false(sb_theap_pop_due(&h, INT64_MAX, &t));
    assert_int_equal(t.at, 7); /* untouched */
    sb_theap_trim(&h, keep_live, &calls);
    sb_theap_compact(&h, keep_live, &calls);
    assert_int_equal(calls, 0);
    sb_theap_close(&h);
    sb_theap_close(&h); /* closing twice is harmless */
}

static void test_same_ms_in_push_order(void **state)
{
    sb_theap h;
    sb_theap_init(&h, NULL);
    /* pushed latest first; each deadline three times */
    for (int at = 5; at >= 1; at--)
        for (int k = 0; k < 3; k++)
            assert_int_equal(sb_theap_push(&h, (sb_timer){.at = at, .key = (uint64_t)(at * 10 + k), .seq = 999}),
                             (uint64_t)((5 - at) * 3 + k + 1));
    assert_int_equal(sb_theap_len(&h), 15);
    assert_int_equal(sb_theap_next_at(&h), 1);
    sb_timer t;
    for (int at = 1; at <= 5; at++)
        for (int k = 0; k < 3; k++) {
            assert_true(sb_theap_pop(&h, &t));
            assert_int_equal(t.at, at);
            assert_int_equal(t.key, (uint64_t)(at * 10 + k));
        }
    assert_false(sb_theap_pop(&h, &t));
    /* sequence numbers go on after the heap empties */
    assert_int_equal(sb_theap_push(&h, (sb_timer){.at = 1}), 16);
    sb_theap_close(&h);
}

static void test_pop_due(void **state)
{
    sb_theap h;
    sb_theap_init(&h, NULL);
    const int64_t at[] = {300, 100, 200, 100, INT64_MAX - 1, -50};
    for (size_t i = 0; i < SB_ARRAY_LEN(at); i++)
        sb_theap_push(&h, (sb_timer){.at = at[i], .key = i});
    sb_timer t;
    assert_true(sb_theap_pop_due(&h, 100, &t));
    assert_int_equal(t.at, -50);
    assert_true(sb_theap_pop_due(&h, 100, &t));
    assert_int_equal(t.key, 1);
    assert_true(sb_theap_pop_due(&h, 100, &t));
    assert_int_equal(t.key, 3);
    assert_false(sb_theap_pop_due(&h, 199, &t));
    assert_int_equal(sb_theap_next_at(&h), 200);
    assert_true(sb_theap_pop_due(&h, INT64_MAX, NULL));
    assert_true(sb_theap_pop_due(&h, INT64_MAX, &t));
    assert_int_equal(t.at, 300);
    assert_true(sb_theap_pop_due(&h, INT64_MAX, &t));
    assert_int_equal(t.at, INT64_MAX - 1);
    assert_int_equal(sb_theap_len(&h), 0);
    sb_theap_close(&h);
}

/* Trim stops at the first live timer: stale ones below it stay. */
static void test_trim(void **state)
{
    sb_theap h;
    sb_theap_init(&h, NULL);
    memset(cancelled, 0, sizeof cancelled);
    for (uint64_t k = 1; k <= 6; k++)
        sb_theap_push(&h, (sb_timer){.at = (int64_t)k * 10, .key = k});
    cancelled[1] = cancelled[2] = cancelled[4] = true;
    int calls = 0;
    sb_theap_trim(&h, keep_live, &calls);
    assert_int_equal(sb_theap_len(&h), 4);
    assert_int_equal(sb_theap_peek(&h)->key, 3);
    sb_theap_compact(&h, keep_live, &calls);
    assert_int_equal(sb_theap_len(&h), 3);
    sb_timer t;
    const uint64_t left[] = {3, 5, 6};
    for (size_t i = 0; i < SB_ARRAY_LEN(left); i++) {
        assert_true(sb_theap_pop(&h, &t));
        assert_int_equal(t.key, left[i]);
    }
    sb_theap_close(&h);
}

/* compact_stale waits for 64 timers and twice the live bound. */
static void test_compact_stale_threshold(void **state)
{
    sb_theap h;
    sb_theap_init(&h, NULL);
    memset(cancelled, 0, sizeof cancelled);
    for (uint64_t k = 0; k < 63; k++)
        sb_theap_push(&h, (sb_timer){.at = 1, .key = 1});
    cancelled[1] = true;
    int calls = 0;
    sb_theap_compact_stale(&h, 0, keep_live, &calls);
    assert_int_equal(calls, 0); /* 63 < 64 */
    sb_theap_push(&h, (sb_timer){.at = 1, .key = 2});
    sb_theap_compact_stale(&h, 33, keep_live, &calls);
    assert_int_equal(calls, 0); /* 64 < 2 * 33 */
    sb_theap_compact_stale(&h, 32, keep_live, &calls);
    assert_int_equal(calls, 64);
    assert_int_equal(sb_theap_len(&h), 1);
    assert_int_equal(sb_theap_peek(&h)->key, 2);
    /* a huge bound must not overflow into a compaction */
    for (uint64_t k = 0; k < 100; k++)
        sb_theap_push(&h, (sb_timer){.at = 1, .key = 1});
    sb_theap_compact_stale(&h, SIZE_MAX, keep_live, &calls);
    assert_int_equal(sb_theap_len(&h), 101);
    sb_theap_close(&h);
}

/* Pushes, pops (due or not), trims and compactions in random order against
 * the sorted reference; every field of every timer must come back. */
static void test_random_against_sorted_reference(void **state)
{
    sb_theap h;
    sb_theap_init(&h, NULL);
    reference ref = {.v = sb_xcalloc(STEPS, sizeof(sb_timer))};
    memset(cancelled, 0, sizeof cancelled);
    int calls = 0;
    int64_t now = 0;
    size_t pops = 0, ties = 0, compactions = 0, peak = 0;
    for (int step = 0; step < STEPS; step++) {
        /* phases that fill the heap and phases that drain it */
        uint32_t push_pct = (step / 20000) % 2 == 0 ? 85 : 40;
        uint32_t op = rnd(100) < push_pct ? 0 : 1 + rnd(99);
        if (op == 0) {
            /* deadlines on few values, so many are equal */
            int64_t at = rnd(2) ? now + (int64_t)rnd(20) : now + 10 * (int64_t)rnd(300);
            sb_timer t = {.at = at,
                          .key = rnd(1000),
                          .aux = (int64_t)rnd(1u << 31) - (1 << 30),
                          .gen = rnd(UINT32_MAX),
                          .kind = (uint8_t)rnd(6)};
            uint64_t seq = sb_theap_push(&h, t);
            assert_int_equal(seq, h.seq);
            t.seq = seq;
            ref_push(&ref, t);
        } else if (op < 40) {
            sb_timer got;
            bool had = sb_theap_pop(&h, &got);
            assert_int_equal(had, ref.n > 0);
            if (had) {
                sb_timer want = ref_pop(&ref);
                assert_same(&got, &want);
                pops++;
                ties += ref.n > 0 && ref.v[0].at == got.at;
            }
        } else if (op < 65) {
            now += rnd(15);
            sb_timer got;
            while (sb_theap_pop_due(&h, now, &got)) {
                sb_timer want = ref_pop(&ref);
                assert_true(want.at <= now);
                assert_same(&got, &want);
                pops++;
                ties += ref.n > 0 && ref.v[0].at == got.at;
            }
            assert_true(ref.n == 0 || ref.v[0].at > now);
        } else if (op < 90) {
            cancelled[rnd(NKEYS)] ^= true;
        } else if (op < 96) {
            sb_theap_compact(&h, keep_live, &calls);
            ref_filter(&ref);
            compactions++;
        } else {
            sb_theap_trim(&h, keep_live, &calls);
            while (ref.n > 0 && cancelled[ref.v[0].key % NKEYS])
                ref_pop(&ref);
        }
        assert_int_equal(sb_theap_len(&h), ref.n);
        assert_int_equal(sb_theap_next_at(&h), ref.n > 0 ? ref.v[0].at : INT64_MAX);
        if (ref.n > 0)
            assert_same(sb_theap_peek(&h), &ref.v[0]);
        if (step % 97 == 0)
            assert_heap(&h, by_at_seq);
        peak = ref.n > peak ? ref.n : peak;
    }
    /* what is left comes out in order */
    sb_timer got;
    while (sb_theap_pop(&h, &got)) {
        sb_timer want = ref_pop(&ref);
        assert_same(&got, &want);
    }
    assert_int_equal(ref.n, 0);
    /* the run covered what it is for: ties, compactions, a deep heap */
    assert_true(pops > 50000 && ties > 10000 && compactions > 1000 && peak > 500);
    free(ref.v);
    sb_theap_close(&h);
}

/* A tie-break of the owner's (by kind, then key as signed, as the engine
 * orders its timers), which leaves some timers tied. Whatever comes out
 * must have nothing left that comes out strictly before it, and the
 * timers come out as a multiset unchanged. */
static bool by_kind_key(const sb_timer *a, const sb_timer *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind;
    return (int64_t)a->key < (int64_t)b->key;
}

static bool by_at_kind_key(const sb_timer *a, const sb_timer *b)
{
    return a->at < b->at || (a->at == b->at && by_kind_key(a, b));
}

static void test_random_with_tie_break(void **state)
{
    sb_theap h;
    sb_theap_init(&h, by_kind_key);
    reference live = {.v = sb_xcalloc(STEPS, sizeof(sb_timer))}; /* what is in the heap, in no useful order */
    memset(cancelled, 0, sizeof cancelled);
    int calls = 0;
    for (int step = 0; step < STEPS / 4; step++) {
        uint32_t op = rnd(100);
        if (op < 55) {
            sb_timer t = {.at = (int64_t)rnd(20),
                          .key = (uint64_t)((int64_t)rnd(9) - 4),
                          .kind = (uint8_t)rnd(3),
                          .gen = (uint32_t)step};
            t.seq = sb_theap_push(&h, t);
            ref_push(&live, t);
        } else if (op < 95) {
            sb_timer got;
            if (!sb_theap_pop(&h, &got)) {
                assert_int_equal(live.n, 0);
                continue;
            }
            size_t found = SIZE_MAX;
            for (size_t i = 0; i < live.n; i++) {
                assert_false(by_at_kind_key(&live.v[i], &got));
                if (live.v[i].seq == got.seq)
                    found = i;
            }
            assert_true(found != SIZE_MAX);
            assert_same(&live.v[found], &got);
            live.v[found] = live.v[--live.n];
        } else if (op < 98) {
            cancelled[rnd(NKEYS)] ^= true;
        } else {
            sb_theap_compact(&h, keep_live, &calls);
            ref_filter(&live);
        }
        assert_int_equal(sb_theap_len(&h), live.n);
        assert_heap(&h, by_at_kind_key);
    }
    free(live.v);
    sb_theap_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_same_ms_in_push_order),
        cmocka_unit_test(test_pop_due),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_compact_stale_threshold),
        cmocka_unit_test(test_random_against_sorted_reference),
        cmocka_unit_test(test_random_with_tie_break),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
