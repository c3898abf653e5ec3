/*
 * backends.c — the list of backends built into this library: the one place outside a
 * backend's own files that names it. Everything else (the `database` key, configuration
 * keys, core migrations, plugin migrations by backend name) loops over this list.
 *
 * Each backend is declared here whether built or not; only the entries of the list are
 * referenced, so only the built ones must exist at link time.
 */
#include <string.h>

#include "backend.h"

extern const kdao__backend_ops kdao__sqlite_ops, kdao__postgres_ops, kdao__cassandra_ops;

const kdao__backend_ops *const kdao__backends[] = {
    &kdao__sqlite_ops, /* first: the default `database` */
#ifdef KDAO_HAVE_POSTGRES
    &kdao__postgres_ops,
#endif
#ifdef KDAO_HAVE_CASSANDRA
    &kdao__cassandra_ops,
#endif
    NULL,
};

const kdao__backend_ops *kdao__backend_find(const char *name) {
  for (const kdao__backend_ops *const *b = kdao__backends; name != NULL && *b != NULL; b++)
    if (strcmp((*b)->name, name) == 0) return *b;
  return NULL;
}

const kdao_migration_def *kdao__backend_migrations(const kdao__backend_ops *b,
                                                   const char *identifier) {
  for (const kdao__migration_set *m = b->migrations; m != NULL && m->identifier != NULL; m++)
    if (strcmp(m->identifier, identifier) == 0) return m->migrations;
  return NULL;
}
