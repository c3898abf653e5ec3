/*
 * backend.h — the one interface every storage backend implements, and the entry that
 * describes a backend to the rest of the library (src/backends.c lists them). A backend's
 * files include this header and nothing of the factory's. Internal.
 *
 * What lives ABOVE this interface, once, in dao.c: argument checks, validation, defaults and
 * generated values (ids, created_at), filter checks, the partial-update merge, foreign-key
 * pre-checks and cascades for backends without native ones, events, TTL bookkeeping for
 * expiry visibility is the backend's (it knows its storage).
 *
 * What a backend does: store and read rows of a compiled schema, map its native constraint
 * failures to Kong's unique/foreign errors naming the field, page (handing dao.c positions it
 * seals into page tokens), keep kdao's secrets, hide expired rows, run migration texts and
 * record them.
 *
 * Row shape at this boundary: a JSON object keyed by field name, values already validated
 * and typed by the schema: id → string, string → string, number → integer or real,
 * boolean → true/false, timestamp → integer milliseconds since the epoch (UTC), array →
 * JSON array, table → JSON object, ANY → string. NULL columns are ABSENT from returned rows.
 *
 * Every function returns KDAO_OK or an error kind and, on failure, stores a new error in
 * *err (err is never NULL at this level). The db name is set by dao.c, backends need not.
 */
#ifndef KDAO_BACKEND_H
#define KDAO_BACKEND_H

#include "kdao.h"
#include "conf.h"
#include "error.h"
#include "schema.h"
#include "sql.h"
#include "util.h"

typedef struct kdao__backend kdao__backend;
typedef struct kdao__backend_ops kdao__backend_ops;

/*
 * Base of every backend state struct: embed it as the FIRST member. `factory` is opaque
 * here: it is only handed back to kdao__factory_schema().
 */
struct kdao__backend {
  const kdao__backend_ops *ops;
  kdao_factory *factory;
};

/*
 * Migrations a backend ships, by the identifier schema_migrations records them under:
 * "core" (required) and the built-in plugins ("key-auth", ...). Arrays end with a NULL
 * identifier.
 */
typedef struct kdao__migration_set {
  const char *identifier;
  const kdao_migration_def *migrations; /* NULL-name terminated */
} kdao__migration_set;

/* Capabilities that let dao.c skip work the backend does natively. */
#define KDAO__CAP_NATIVE_CASCADE 0x1u /* ON DELETE CASCADE removes children */
#define KDAO__CAP_NATIVE_FOREIGN 0x2u /* FOREIGN KEY constraints reject orphans */
#define KDAO__CAP_TRANSACTIONS 0x4u   /* begin/commit/rollback are real */

#define KDAO__BACKEND_OPS_VERSION 3

/*
 * A backend: what it is called, what it ships and what it does. Everything that differs
 * between backends outside their own files is read from here, so adding one touches no
 * other code (docs/architecture.md, "Adding a backend").
 */
struct kdao__backend_ops {
  unsigned version; /* KDAO__BACKEND_OPS_VERSION */
  const char *name; /* the `database` value selecting it; also errors' "[<name> error]" */
  unsigned caps;
  const kdao__migration_set *migrations;
  /* Its configuration keys (conf.h's format), NULL-key terminated; may be NULL. */
  const kdao__conf_option *options;
  /*
   * Rules across its keys (NULL: none), run by kdao_config_check() for every built
   * backend, whichever is selected, since one file may configure several. Returns KDAO_OK
   * with *msg the first complaint (kdao__malloc()ed) or NULL, or KDAO_ERR_NOMEM.
   */
  int (*config_check)(const kdao_config *cfg, char **msg);

  /* Opens a connection for the factory's configuration. */
  int (*open)(kdao_factory *f, const kdao_config *cfg, kdao__backend **out, kdao_error **err);
  void (*close)(kdao__backend *b);
  /* Kong's infos(): {"desc": ..., "name": ...}. New reference. */
  json_t *(*infos)(kdao__backend *b);

  /*
   * Inserts a complete, validated row. `ttl` > 0: expires after ttl seconds. *out = the
   * stored row as read back (new reference). Unique violations → KDAO_ERR_UNIQUE with
   * fields {<field>: <value>} (kdao_error_new_fields), foreign → KDAO_ERR_FOREIGN likewise.
   * The schema's composite uniques (s->uniques) are the backend's to enforce too, here, in
   * insert_many and in an update touching a member, so that concurrent writers cannot both
   * pass (kdao__unique_violation gives the error).
   */
  int (*insert)(kdao__backend *b, const kdao_schema *s, const json_t *row, int ttl, json_t **out,
                kdao_error **err);
  /* Inserts many rows atomically (one transaction or pipeline); *out = array of rows. */
  int (*insert_many)(kdao__backend *b, const kdao_schema *s, const json_t *rows, json_t **out,
                     kdao_error **err);
  /* Finds by primary key `pk` (object holding exactly the pk fields). *out NULL if none. */
  int (*find)(kdao__backend *b, const kdao_schema *s, const json_t *pk, json_t **out,
              kdao_error **err);
  /* Rows matching every member of `filter` (NULL: all), array in primary-key order. */
  int (*find_all)(kdao__backend *b, const kdao_schema *s, const json_t *filter, json_t **out,
                  kdao_error **err);
  /*
   * One page of at most `size` rows after position `after` (`after_len` bytes; NULL: the
   * start). *next = kdao__malloc()ed position of the next page (*next_len bytes), NULL when no
   * row follows — also when the page is exactly full. A position is the backend's own (a
   * keyset position, a paging state); dao.c wraps it in the authenticated page token, so a
   * backend sees only positions it made. One it cannot use all the same (made before its
   * table changed) → kdao__invalid_offset().
   */
  int (*find_page)(kdao__backend *b, const kdao_schema *s, const json_t *filter,
                   const unsigned char *after, size_t after_len, size_t size, json_t **out,
                   unsigned char **next, size_t *next_len, kdao_error **err);
  int (*count)(kdao__backend *b, const kdao_schema *s, const json_t *filter, long long *out,
               kdao_error **err);
  /*
   * Updates the row addressed by `pk`: SET every member of `values`, and set to NULL every
   * field named in `nulls` (a JSON array; empty unless full update). `ttl` > 0 sets a new
   * expiry. *out = the updated row, NULL when no (unexpired) row matched.
   */
  int (*update)(kdao__backend *b, const kdao_schema *s, const json_t *pk, const json_t *values,
                const json_t *nulls, int ttl, json_t **out, kdao_error **err);
  /*
   * Deletes by pk; *out = the deleted row, NULL if none matched. Of two concurrent deletes
   * of one row, only one may return it. Without KDAO__CAP_NATIVE_FOREIGN the delete must be
   * ordered with find_current: once it has returned, find_current sees no row.
   */
  int (*delete)(kdao__backend *b, const kdao_schema *s, const json_t *pk, json_t **out,
                kdao_error **err);
  /*
   * Required without KDAO__CAP_NATIVE_FOREIGN (NULL otherwise). Finds by pk like `find`, but
   * linearizably: the answer reflects every insert and delete of that row that completed
   * before the call, whatever the consistency of plain reads. dao.c checks a child's parents
   * with it after writing the child, which is what keeps a child inserted during its
   * parent's delete from surviving it (docs/cassandra.md, "Children and their parents").
   */
  int (*find_current)(kdao__backend *b, const kdao_schema *s, const json_t *pk, json_t **out,
                      kdao_error **err);
  int (*truncate)(kdao__backend *b, const kdao_schema *s, kdao_error **err);

  /* Transactions (no-ops returning KDAO_OK where the backend has none). */
  int (*begin)(kdao__backend *b, kdao_error **err);
  int (*commit)(kdao__backend *b, kdao_error **err);
  int (*rollback)(kdao__backend *b);

  /* {identifier: [names...]} from schema_migrations ({} when the table is missing). */
  int (*migrations_current)(kdao__backend *b, json_t **out, kdao_error **err);
  /*
   * Runs migration `up` (statements separated by ";") and records `name` under
   * `identifier` in schema_migrations, atomically where the backend can.
   */
  int (*migration_apply)(kdao__backend *b, const char *identifier, const char *name, const char *up,
                         kdao_error **err);
  /* DDL text creating the table of `s` (and its indexes): for plugins without migrations. */
  char *(*schema_ddl)(kdao__backend *b, const kdao_schema *s);
  /* Drops the named tables (missing ones ignored), helper tables and schema_migrations. */
  int (*drop_schema)(kdao__backend *b, const char *const *tables, size_t n, kdao_error **err);
  /*
   * The value stored under `name` in kdao's own table `kdao_secrets` (created when missing),
   * storing `candidate` first when there is none, race-free: every process sharing the
   * database gets the value the first writer stored. *out = kdao__malloc()ed text.
   */
  int (*secret)(kdao__backend *b, const char *name, const char *candidate, char **out,
                kdao_error **err);
  /* Deletes the expired rows of the factory's `n` entities `schemas`; *purged = how many. */
  int (*purge_expired)(kdao__backend *b, const kdao_schema *const *schemas, size_t n,
                       long long *purged, kdao_error **err);
};

/*
 * The backends built in (src/backends.c), NULL-terminated; the first is the default
 * `database`.
 */
extern const kdao__backend_ops *const kdao__backends[];

/* The built backend called `name`, or NULL. */
const kdao__backend_ops *kdao__backend_find(const char *name);

/* The migrations `b` ships for `identifier` ("core", a built-in plugin), or NULL. */
const kdao_migration_def *kdao__backend_migrations(const kdao__backend_ops *b,
                                                   const char *identifier);

/* ---- helpers backends share (backend_util.c) ---- */

/*
 * Keyset positions: the primary-key values of the last row of a page, as compact JSON array
 * text. Encode returns a kdao__malloc()ed string; decode returns a new reference or NULL when
 * the bytes are not a JSON array of `npk` scalar values.
 */
char *kdao__keyset_encode(const kdao_schema *s, const json_t *row);
json_t *kdao__keyset_decode(const unsigned char *pos, size_t len, size_t npk);

/* The one error of an unusable page token on every backend: schema {offset = "invalid offset"}. */
kdao_error *kdao__invalid_offset(void);

/*
 * Page tokens (the `offset` callers pass back): base64url of a version byte, the backend's
 * position and a 16-byte HMAC-SHA256 under the database's page key over the table, the
 * canonical filter JSON (NULL: none) and the position. Seal returns a kdao__malloc()ed token
 * or NULL (out of memory). Open returns 0 with *pos (kdao__malloc()ed, NUL after its *pos_len
 * bytes) when the token was sealed by `key` for this table and filter, 1 when it was not,
 * -1 when out of memory.
 */
#define KDAO__PAGE_KEY_LEN 32
char *kdao__page_token_seal(const unsigned char key[KDAO__PAGE_KEY_LEN], const char *table,
                            const char *filter, const unsigned char *pos, size_t pos_len);
int kdao__page_token_open(const unsigned char key[KDAO__PAGE_KEY_LEN], const char *table,
                          const char *filter, const char *token, unsigned char **pos,
                          size_t *pos_len);
/* A new random page key, base64url (kdao__malloc()ed), or NULL when no randomness is to be had. */
char *kdao__page_key_new(void);

/*
 * A JSON-encoded array or table column as the schema types it: Kong's cjson wrote an empty
 * array as "{}" (and an empty table as "[]"), the field's type says which was meant. A new
 * reference, or NULL when `text` is not JSON.
 */
json_t *kdao__json_column(const kdao__field *f, const char *text, size_t len);

/* Base64url without padding. */
char *kdao__b64_encode(const unsigned char *data, size_t len);
unsigned char *kdao__b64_decode(const char *text, size_t *len);

/*
 * Composite uniques (backend_unique.c), for backends that hold the write lock for them
 * across the check and the write: fails with the violation (kdao__unique_violation) when a
 * stored row other than `self` (a primary key; NULL for an insert) holds a composite of
 * `row`. Reads through b's find_all.
 */
int kdao__uniques_check(kdao__backend *b, const kdao_schema *s, const json_t *row,
                        const json_t *self, kdao_error **err);

/* `old` with `values` set and the fields named in `nulls` removed (an update's result). */
json_t *kdao__row_merge(const json_t *old, const json_t *values, const json_t *nulls);

/* The factory's schema of entity `name` (NULL if none): for foreign lookups. */
const kdao_schema *kdao__factory_schema(const kdao_factory *f, const char *name);

/*
 * The factory's entity schemas, fixed from connect on (*n = 0 before): for a backend that
 * purges expired rows on its own initiative, not only in purge_expired.
 */
const kdao_schema *const *kdao__factory_schemas(const kdao_factory *f, size_t *n);

#endif
