/* theap.c - a binary min-heap of timers (see theap.h).
 *
 * The sift loops are the ones the four engine modules each carried before
 * they shared this file, step for step: a module whose tie-break leaves
 * timers tied (the engine's) sees them come out in the order it always did. */
#include "base/theap.h"

#include <stdlib.h>

#include "base/sb.h"

void sb_theap_init(sb_theap *h, sb_theap_tie_fn tie)
{
    *h = (sb_theap){.tie = tie};
}

void sb_theap_close(sb_theap *h)
{
    free(h->v);
    *h = (sb_theap){0};
}

size_t sb_theap_len(const sb_theap *h)
{
    return h->n;
}

static bool before(const sb_theap *h, const sb_timer *a, const sb_timer *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    return h->tie != NULL ? h->tie(a, b) : a->seq < b->seq;
}

static void swap(sb_timer *a, sb_timer *b)
{
    sb_timer tmp = *a;
    *a = *b;
    *b = tmp;
}

static void sift_up(sb_theap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(h, &h->v[i], &h->v[p]))
            break;
        swap(&h->v[i], &h->v[p]);
        i = p;
    }
}

static void sift_down(sb_theap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && before(h, &h->v[l], &h->v[m]))
            m = l;
        if (r < h->n && before(h, &h->v[r], &h->v[m]))
            m = r;
        if (m == i)
            return;
        swap(&h->v[i], &h->v[m]);
        i = m;
    }
}

uint64_t sb_theap_push(sb_theap *h, sb_timer t)
{
    if (h->n == h->cap) {
        SB_ASSERT(h->cap < SIZE_MAX / 2 / sizeof *h->v);
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = sb_xrealloc(h->v, h->cap * sizeof *h->v);
    }
    t.seq = ++h->seq;
    h->v[h->n] = t;
    sift_up(h, h->n++);
    return t.seq;
}

const sb_timer *sb_theap_peek(const sb_theap *h)
{
    return h->n > 0 ? &h->v[0] : NULL;
}

int64_t sb_theap_next_at(const sb_theap *h)
{
    return h->n > 0 ? h->v[0].at : INT64_MAX;
}

bool sb_theap_pop(sb_theap *h, sb_timer *out)
{
    if (h->n == 0)
        return false;
    if (out != NULL)
        *out = h->v[0];
    h->v[0] = h->v[--h->n];
    sift_down(h, 0);
    return true;
}

bool sb_theap_pop_due(sb_theap *h, int64_t now, sb_timer *out)
{
    return h->n > 0 && h->v[0].at <= now && sb_theap_pop(h, out);
}

void sb_theap_trim(sb_theap *h, sb_theap_keep_fn keep, void *ctx)
{
    while (h->n > 0 && !keep(&h->v[0], ctx))
        sb_theap_pop(h, NULL);
}

/* Filters in place, keeping the survivors' relative order, then heapifies
 * bottom-up (Floyd): O(n), against O(n log n) for popping the stale ones. */
void sb_theap_compact(sb_theap *h, sb_theap_keep_fn keep, void *ctx)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        if (keep(&h->v[i], ctx))
            h->v[n++] = h->v[i];
    h->n = n;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(h, i);
}

void sb_theap_compact_stale(sb_theap *h, size_t live_max, sb_theap_keep_fn keep, void *ctx)
{
    if (h->n >= 64 && h->n / 2 >= live_max)
        sb_theap_compact(h, keep, ctx);
}
