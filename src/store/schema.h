/* schema.h - versioned migrations of the database schema. */
#ifndef SB_SCHEMA_H
#define SB_SCHEMA_H

int sb_schema_count(void);
/* SQL of migration `version` (1-based). */
const char *sb_schema_migration(int version);

#endif
