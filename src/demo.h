/* demo.h - the demo configuration seeded on first start of `make run`. */
#ifndef SB_DEMO_H
#define SB_DEMO_H

#include "store/store.h"

/* Seeds a company, teams Sales and Support, three agents, an API channel and
 * a website-chat channel into an empty database; does nothing otherwise. */
int sb_demo_seed(sb_store *store);

#endif
