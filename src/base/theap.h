/* theap.h - a binary min-heap of timers, the one the engine's state machines
 * share (engine.c, ivr.c, callq.c, fwd.c).
 *
 * Timers come out by deadline. Timers due at the same ms come out in the
 * order they were pushed, unless the owner gives a tie-break of its own.
 * Nothing is removed from the middle: an owner cancels a timer by forgetting
 * the generation (or sequence number) it carries, skips a stale entry when
 * it comes up, and compacts the heap once stale entries outnumber live ones
 * (when is the owner's call: it knows how many can be live). */
#ifndef SB_THEAP_H
#define SB_THEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sb_timer {
    int64_t at;   /* the deadline, ms */
    uint64_t key; /* what the timer is for: a ticket, agent or call id */
    int64_t aux;  /* a second id where one is needed (the engine's rule) */
    uint64_t seq; /* set by push: 1, 2, 3... in push order, never reused */
    uint32_t gen; /* the owner's own generation, if it keeps one */
    uint8_t kind; /* the owner's kind of timer */
} sb_timer;

/* "a comes out before b", asked only of two timers due at the same ms. A
 * tie-break that leaves some timers tied leaves their order to the heap's
 * shape: the same for the same history of pushes and pops. */
typedef bool (*sb_theap_tie_fn)(const sb_timer *a, const sb_timer *b);
/* Whether a timer is still live (kept by compact and trim). */
typedef bool (*sb_theap_keep_fn)(const sb_timer *t, void *ctx);

typedef struct sb_theap {
    sb_timer *v; /* v[0] is the next to come out; read-only outside theap.c */
    size_t n, cap;
    uint64_t seq; /* the last sequence number given */
    sb_theap_tie_fn tie;
} sb_theap;

/* tie NULL: timers due at the same ms come out in push order. A zeroed
 * sb_theap is an initialized one with tie NULL. */
void sb_theap_init(sb_theap *h, sb_theap_tie_fn tie);
void sb_theap_close(sb_theap *h);
size_t sb_theap_len(const sb_theap *h);
/* Returns the timer's sequence number (t.seq is ignored): unique in this
 * heap and never 0, so an owner can use it as the timer's generation. */
uint64_t sb_theap_push(sb_theap *h, sb_timer t);
/* The next timer to come out, NULL if the heap is empty. */
const sb_timer *sb_theap_peek(const sb_theap *h);
/* The next deadline, INT64_MAX if the heap is empty. */
int64_t sb_theap_next_at(const sb_theap *h);
/* Takes the next timer out into *out (may be NULL); false if empty. */
bool sb_theap_pop(sb_theap *h, sb_timer *out);
/* Like pop, but only a timer due at `now` or before. */
bool sb_theap_pop_due(sb_theap *h, int64_t now, sb_timer *out);
/* Pops stale timers off the top, so the next deadline is a live one. */
void sb_theap_trim(sb_theap *h, sb_theap_keep_fn keep, void *ctx);
/* Drops every timer keep() refuses and restores the heap in O(n). */
void sb_theap_compact(sb_theap *h, sb_theap_keep_fn keep, void *ctx);
/* Compacts once the heap holds 64 timers or more and at least twice as many
 * as can be live (live_max): stale entries then outnumber live ones, and
 * compacting that seldom costs O(1) a push, amortized. */
void sb_theap_compact_stale(sb_theap *h, size_t live_max, sb_theap_keep_fn keep, void *ctx);

#endif
