/* demo.h - the demo configuration seeded on first start of `make run`. */
#ifndef SB_DEMO_H
#define SB_DEMO_H

#include "store/store.h"

/* Seeds a company, teams Sales and Support, three agents (with SIP
 * extensions 201-203, digest HA1 for `sip_realm`), an API channel and a
 * website-chat channel into an empty database; does nothing otherwise. */
int sb_demo_seed(sb_store *store, const char *sip_realm);

#endif
