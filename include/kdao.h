/*
 * kdao.h — the public C API of libkdao, a datastore layer for API-gateway entities
 * compatible with Kong 0.10.4's DAO (behaviour, messages and on-disk tables).
 *
 * This header is the manual. Conventions that hold for every function unless its own
 * comment says otherwise:
 *
 *  - Status. Fallible functions return a kdao_status: KDAO_OK (0) on success, otherwise the
 *    kind of the error. Objects they create come back through OUT pointers,
 *    which are set to NULL (or 0) on failure.
 *  - Error detail. The last argument `kdao_error **err` is optional (NULL is allowed). On
 *    failure *err receives a new error object that the caller owns and frees with
 *    kdao_error_free(). There is no "last error" slot anywhere: errors are per call.
 *  - JSON ownership, in jansson's words. `json_t *` arguments are borrowed: kdao never
 *    steals or modifies them (validation works on its own deep copy). `json_t **` OUT
 *    arguments receive a NEW reference: the caller must json_decref() it.
 *  - Strings returned through `char **` are allocated by kdao and freed with kdao_free().
 *    `const char *` results are borrowed and live as long as the object they come from.
 *  - Lifetimes. Every object comes from a constructor named `kdao_<object>_new`, or after how
 *    it is made when that says more (`kdao_schema_compile`, `kdao_factory_open`), and goes
 *    with `kdao_<object>_free`, which accepts NULL and does nothing. Borrowed objects
 *    (a factory's DAOs and schemas) have no destructor: they go with their owner.
 *  - Flags carry their object's prefix: KDAO_FIELD_*, KDAO_SCHEMA_*, KDAO_DAO_* (writes).
 *  - Threads. A factory and its DAOs may be used by one thread at a time. Different
 *    factories are independent. Errors and JSON values may move between threads.
 *  - Misuse (a NULL handle, a JSON value of the wrong type where the API demands an object,
 *    a missing primary key) returns KDAO_ERR_MISUSE, never a data error, with Kong's
 *    argument-error wording ("bad argument #1 to 'insert' (table expected, got nil)").
 */
#ifndef KDAO_H
#define KDAO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KDAO_VERSION_MAJOR 0
#define KDAO_VERSION_MINOR 1
#define KDAO_VERSION_PATCH 0
#define KDAO_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define KDAO_API __attribute__((visibility("default")))
#else
#define KDAO_API
#endif

/* ------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------- */

/*
 * The error catalogue, listed once: (constant, number, name). The first four are Kong 0.10's
 * error kinds; the rest are kdao's own and never produced by valid use on a healthy backend.
 */
#define KDAO_ERROR_MAP(X)                                                                  \
  X(KDAO_ERR_DB, 1, "db")           /* the backend failed (connection, SQL, CQL, ...) */   \
  X(KDAO_ERR_UNIQUE, 2, "unique")   /* a unique value already exists */                    \
  X(KDAO_ERR_FOREIGN, 3, "foreign") /* a referenced row does not exist */                  \
  X(KDAO_ERR_SCHEMA, 4, "schema")   /* the entity or filter failed validation */           \
  X(KDAO_ERR_MISUSE, 5, "misuse")   /* the API was called wrongly (a programming error) */ \
  X(KDAO_ERR_NOMEM, 6, "nomem")     /* out of memory */                                    \
  X(KDAO_ERR_CONFIG, 7, "config")   /* bad configuration: unknown key, bad value */        \
  X(KDAO_ERR_IO, 8, "io")           /* a file could not be read */

/* Status codes: KDAO_OK, or the kind of the error. */
typedef enum kdao_status {
  KDAO_OK = 0,
#define KDAO__ERR_ENUM(name, num, str) name = num,
  KDAO_ERROR_MAP(KDAO__ERR_ENUM)
#undef KDAO__ERR_ENUM
} kdao_status;

/*
 * kdao_error — one failure, owned by whoever received it; free with kdao_error_free().
 * Carries Kong's kind, the backend name ("sqlite", "postgres", "cassandra" or none), Kong's
 * message, for field-level errors a field → message map, and the backend's native code.
 */
typedef struct kdao_error kdao_error;

/* Name of a kind: "db", "unique", "foreign", "schema", "misuse", ...; "ok" for KDAO_OK. */
KDAO_API const char *kdao_error_kind_name(kdao_status kind);

/* The kind of `err` (KDAO_OK when err is NULL). */
KDAO_API kdao_status kdao_error_kind(const kdao_error *err);

/*
 * Kong's `message`: for field errors the map printed as `k=v` pairs joined by one space,
 * keys sorted, arrays joined by ","; otherwise the plain message. Borrowed from `err`.
 */
KDAO_API const char *kdao_error_message(const kdao_error *err);

/*
 * Kong's `tbl`: a JSON object mapping field name → message (a string, or an array of
 * strings when a field collected several), or NULL when the error is not field-level.
 * Borrowed reference, valid while `err` lives.
 */
KDAO_API const json_t *kdao_error_fields(const kdao_error *err);

/* The backend name set on the error ("sqlite", ...), or NULL. Borrowed. */
KDAO_API const char *kdao_error_db_name(const kdao_error *err);

/*
 * Kong's tostring(err): "[<db_name> error] <message>" when a backend name is set, else the
 * message. Borrowed from `err`.
 */
KDAO_API const char *kdao_error_string(const kdao_error *err);

/*
 * The backend's native code (SQLSTATE, SQLite extended code, CQL error code) or NULL —
 * except for the KDAO_ERR_DB failures below, which every backend reports with the same
 * portable code (its native detail stays in the message), so that a caller can react
 * without knowing the backend. None of them says whether a write that failed this way was
 * applied when the connection dropped mid-statement.
 */
KDAO_API const char *kdao_error_code(const kdao_error *err);

/*
 * The backend cannot be reached: connection refused or lost, server shutting down or
 * starting up, no live Cassandra replica. Transient: the next operation reconnects, so
 * retrying later may succeed.
 */
#define KDAO_ERR_CODE_UNAVAILABLE "unavailable"
/* The database or its disk is full: writes fail (with nothing written), reads still work. */
#define KDAO_ERR_CODE_FULL "full"
/* The database is read-only (file, mount or server): writes fail, reads still work. */
#define KDAO_ERR_CODE_READ_ONLY "read_only"

/*
 * CONSTRUCTOR: an error of `kind` with a plain `message` (copied). For callbacks that reject
 * an entity (self_check) and for bindings. Never NULL: when out of memory, every error
 * constructor returns one shared KDAO_ERR_NOMEM error ("out of memory"), which
 * kdao_error_free() leaves alone, so a failure always comes with an error.
 */
KDAO_API kdao_error *kdao_error_new(kdao_status kind, const char *message);

/*
 * CONSTRUCTOR: a field-level error, like Kong's Errors.<kind>(tbl). For KDAO_ERR_UNIQUE and
 * KDAO_ERR_FOREIGN `fields` maps field → offending VALUE and the messages become
 * "already exists with value '<v>'" / "does not exist with value '<v>'"; for other kinds it
 * maps field → message. `fields` is borrowed (copied).
 */
KDAO_API kdao_error *kdao_error_new_fields(kdao_status kind, const json_t *fields);

/*
 * CONSTRUCTOR: like kdao_error_new(), with the backend name `db_name` ("postgres", ...) that
 * kdao_error_db_name() and kdao_error_string() report, as errors coming from a DAO carry it.
 * For tools that refuse an operation on the backend's behalf. NULL `db_name`: none.
 */
KDAO_API kdao_error *kdao_error_new_db(kdao_status kind, const char *db_name, const char *message);

/* DESTRUCTOR. */
KDAO_API void kdao_error_free(kdao_error *err);

/*
 * The allocator of everything libkdao allocates: its own objects and strings, the JSON values
 * it builds (through jansson's json_set_alloc_funcs, which is process-wide) and its CQL
 * client's buffers. Memory that SQLite, libpq, OpenSSL and PCRE2 allocate for themselves is
 * theirs. NULL restores libc's functions.
 */
typedef struct kdao_allocator {
  void *(*malloc)(size_t size);
  void *(*realloc)(void *ptr, size_t size);
  void (*free)(void *ptr);
} kdao_allocator;

/*
 * Sets the allocator (copied). Call it once, before any other kdao or jansson call: memory
 * allocated before must not be freed after a change. Every allocation failure surfaces as
 * KDAO_ERR_NOMEM (or the failing operation's own error) with nothing written.
 * KDAO_ERR_MISUSE when a member is NULL.
 */
KDAO_API kdao_status kdao_set_allocator(const kdao_allocator *allocator);

/* Frees a string kdao returned through a `char **`. */
KDAO_API void kdao_free(void *ptr);

/* ------------------------------------------------------------------------------------------
 * Configuration (kong.conf style)
 * ---------------------------------------------------------------------------------------- */

/*
 * kdao_config — a set of configuration values: defaults < file < KDAO_<KEY> environment
 * variables < kdao_config_set(). Keys are Kong 0.10's datastore keys (database, pg_*,
 * cassandra_*) plus kdao's own (sqlite_path, plugins_dir, ...); docs/configuration.md lists
 * them. Unknown keys and bad values are KDAO_ERR_CONFIG errors. A factory copies what it needs
 * at open, so the config may be freed after kdao_factory_open().
 */
typedef struct kdao_config kdao_config;

/* CONSTRUCTOR: a configuration holding only defaults. */
KDAO_API kdao_status kdao_config_new(kdao_config **out, kdao_error **err);

/*
 * Reads a kong.conf-style file: `key = value` lines, `#` comments (`\#` escapes a hash),
 * blank lines ignored. Fails with KDAO_ERR_IO if unreadable, KDAO_ERR_CONFIG naming the
 * line for an unknown key or a bad value; on failure nothing from the file is applied.
 */
KDAO_API kdao_status kdao_config_load_file(kdao_config *cfg, const char *path, kdao_error **err);

/* Applies KDAO_<UPPERCASE KEY> environment variables; same checks as the file. */
KDAO_API kdao_status kdao_config_load_env(kdao_config *cfg, kdao_error **err);

/* Sets one key from its text form (checked and converted like a file line). */
KDAO_API kdao_status kdao_config_set(kdao_config *cfg, const char *key, const char *value,
                                     kdao_error **err);

/*
 * The text form of a key's value, or NULL when unset or unknown. Borrowed, valid until the
 * key is set again. Secrets (passwords) are returned as they are: callers that print must
 * use kdao_config_dump().
 */
KDAO_API const char *kdao_config_get(const kdao_config *cfg, const char *key);

/* All keys and values as a JSON object, secrets masked as "******". New reference. */
KDAO_API json_t *kdao_config_dump(const kdao_config *cfg);

/*
 * Checks the rules that span several keys or look inside a value (Kong's conf_loader
 * "custom validations"): DCAwareRoundRobin needs cassandra_local_datacenter, contact points
 * carry no port, data centers read `name:N`, admin_listen reads `address:port`. They cannot
 * run per source, because a later source may complete an earlier one (a file selecting
 * DCAwareRoundRobin, the environment naming the data center), so they run once everything
 * is loaded: kdao_factory_new() runs them, and a tool may run them earlier to report a bad
 * configuration before opening anything. KDAO_ERR_CONFIG with the first failure.
 */
KDAO_API kdao_status kdao_config_check(const kdao_config *cfg, kdao_error **err);

/*
 * The option table as JSON, for documentation and `--help` output: an array, in table order,
 * of {"key", "type", "default" (text or null), "secret", "values" (enums), "min" and "max"
 * (numbers), "env", "description"}. New reference; NULL when out of memory.
 */
KDAO_API json_t *kdao_config_describe(void);

/* DESTRUCTOR. */
KDAO_API void kdao_config_free(kdao_config *cfg);

/* ------------------------------------------------------------------------------------------
 * Schemas
 * ---------------------------------------------------------------------------------------- */

/*
 * kdao_schema — a compiled, immutable entity or nested schema. Schemas belonging to a factory
 * live as long as the factory; one from kdao_schema_compile() is freed with kdao_schema_free().
 */
typedef struct kdao_schema kdao_schema;

/* kdao_factory — the DAO factory: schemas, constraint graph, backend connection, DAOs. */
typedef struct kdao_factory kdao_factory;

/* kdao_dao — one entity's DAO. Owned by its factory; never outlives it. */
typedef struct kdao_dao kdao_dao;

/* Field types, Kong 0.10's names. KDAO_TYPE_ANY is Kong's unchecked types such as "text". */
typedef enum kdao_type {
  KDAO_TYPE_ANY = 0,
  KDAO_TYPE_ID,
  KDAO_TYPE_STRING,
  KDAO_TYPE_NUMBER,
  KDAO_TYPE_BOOLEAN,
  KDAO_TYPE_ARRAY,
  KDAO_TYPE_TABLE,
  KDAO_TYPE_TIMESTAMP,
  KDAO_TYPE_URL
} kdao_type;

/* Kong's name of a type: "id", "string", ..., "url"; "any" for KDAO_TYPE_ANY and unknown values. */
KDAO_API const char *kdao_type_name(kdao_type type);

/* Field flags. */
#define KDAO_FIELD_REQUIRED 0x1u     /* non-nil and not "" */
#define KDAO_FIELD_UNIQUE 0x2u       /* unique among rows (enforced by the backend) */
#define KDAO_FIELD_IMMUTABLE 0x4u    /* "cannot be updated" (see kdao_dao_update) */
#define KDAO_FIELD_INSERT_VALUE 0x8u /* dao_insert_value: generated on insert when absent */

/* Schema flags. */
#define KDAO_SCHEMA_FLEXIBLE 0x1u    /* a map of arbitrary keys, each validated by `fields` */
#define KDAO_SCHEMA_NO_CONSUMER 0x2u /* plugin config schema: no consumer_id allowed */

/* Validation modes. */
typedef enum kdao_mode {
  KDAO_MODE_INSERT = 0,
  KDAO_MODE_UPDATE,     /* partial update: only given fields are checked */
  KDAO_MODE_FULL_UPDATE /* full update: defaults and required rules apply */
} kdao_mode;

/*
 * Callback: a field's default computed from the table being validated (Kong's
 * `default = function(t)`). Returns a NEW reference, or NULL for "no default".
 */
typedef json_t *(*kdao_default_fn)(json_t *entity, void *ud);

/*
 * Callback: Kong's field `func(value, t, column)`. `value` is the field's value (borrowed, may
 * be NULL), `entity` the table being validated (may be modified). Return 0 to accept. To
 * reject, return non-zero and set *message to a malloc()ed message (kdao frees it); a
 * non-zero return with *message left NULL is accepted silently, as in Kong. To set other
 * fields, store a NEW reference to an object in *new_fields: its members are merged into
 * the entity. `dao` is the DAO being validated, or NULL outside a DAO.
 */
typedef int (*kdao_func_fn)(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                            json_t **new_fields, char **message, void *ud);

/*
 * Callback: Kong's `schema = function(t)`: chooses a nested schema from the enclosing table
 * (plugins: the config schema of `t.name`). Returns a borrowed schema that lives at least as
 * long as the factory, or NULL: with *message set (malloc()ed) that is an error recorded
 * under the field; without, nested validation is skipped.
 */
typedef const kdao_schema *(*kdao_schema_fn)(kdao_dao *dao, json_t *entity, char **message,
                                             void *ud);

/*
 * Callback: Kong's `self_check(schema, t, dao, is_update)`, run after the field rules when
 * they found no error. Return NULL to accept, or a new error of any kind to reject (kdao
 * takes ownership).
 */
typedef kdao_error *(*kdao_self_check_fn)(kdao_dao *dao, const kdao_schema *schema, json_t *entity,
                                          kdao_mode mode, void *ud);

struct kdao_schema_def;

/*
 * One field of a schema definition. Unused members are 0/NULL. Definitions are copied and
 * compiled at registration, so they need not outlive that call, except `ud`.
 */
typedef struct kdao_field_def {
  const char *name; /* [a-z_][a-z0-9_]* for entity fields */
  kdao_type type;
  unsigned flags;                       /* KDAO_FIELD_* */
  const char *default_json;             /* default value as JSON text, e.g. "true", "[]" */
  kdao_default_fn default_fn;           /* computed default (wins over default_json) */
  const char *foreign;                  /* "entity:field" this field references */
  const char *const *enum_values;       /* NULL-terminated allowed string values */
  const char *regex;                    /* PCRE2 pattern the (string) value must match */
  kdao_func_fn func;                    /* custom check */
  const struct kdao_schema_def *schema; /* nested schema for a table value */
  kdao_schema_fn schema_fn;             /* nested schema chosen at validation time */
  void *ud;                             /* passed to default_fn, func and schema_fn */
} kdao_field_def;

/*
 * Version of the definition structs below; set `version` to it. Version 2 changed
 * kdao_plugin_def (migrations keyed by backend name instead of a per-backend array):
 * kdao_factory_register_plugin() refuses a version 1 plugin definition with
 * KDAO_ERR_MISUSE; rebuild against this header and list migrations as
 * kdao_plugin_migrations. Schema definitions kept their layout and accept 1 and 2.
 */
#define KDAO_DEF_VERSION 2

/* A schema definition: an entity (name + table + primary_key) or a nested/config schema. */
typedef struct kdao_schema_def {
  unsigned version;               /* KDAO_DEF_VERSION */
  const char *name;               /* DAO name, e.g. "apis"; NULL for nested schemas */
  const char *table;              /* table name; defaults to name */
  const char *const *primary_key; /* NULL-terminated field names (entities only) */
  const kdao_field_def *fields;   /* array terminated by an entry with name == NULL */
  unsigned flags;                 /* KDAO_SCHEMA_* */
  kdao_self_check_fn self_check;
  void *ud; /* passed to self_check */
} kdao_schema_def;

/*
 * CONSTRUCTOR: compiles a standalone schema (nested definitions included). Fails with
 * KDAO_ERR_MISUSE naming the problem for an invalid definition (bad name, bad regex, bad
 * default JSON, primary key naming no field). Free with kdao_schema_free().
 */
KDAO_API kdao_status kdao_schema_compile(const kdao_schema_def *def, kdao_schema **out,
                                         kdao_error **err);

/* DESTRUCTOR for schemas from kdao_schema_compile() (never for a factory's schemas). */
KDAO_API void kdao_schema_free(kdao_schema *schema);

/* The schema's DAO name (NULL for nested schemas) and table. Borrowed. */
KDAO_API const char *kdao_schema_name(const kdao_schema *schema);
KDAO_API const char *kdao_schema_table(const kdao_schema *schema);

/* The schema as a JSON description (fields, types, flags, defaults). New reference. */
KDAO_API json_t *kdao_schema_describe(const kdao_schema *schema);

/*
 * Introspection of a compiled schema, for tools that work on any entity (a CLI, an admin
 * API, a binding) without knowing its definition. Fields are indexed 0..count-1 in name
 * order (the validator's order), not definition order.
 */

/* Number of fields of `schema` (0 for NULL). */
KDAO_API size_t kdao_schema_field_count(const kdao_schema *schema);

/* Index of field `name` in `schema`, or -1 when there is none. */
KDAO_API int kdao_schema_field_index(const kdao_schema *schema, const char *name);

/*
 * What a compiled field is, as kdao_schema_field_info() reports it. Strings and `schema` are
 * borrowed from the schema and live as long as it does.
 */
typedef struct kdao_field_info {
  const char *name;
  kdao_type type;
  unsigned flags;             /* KDAO_FIELD_* */
  const char *foreign_entity; /* "apis" of a field defined with foreign "apis:id", or NULL */
  const char *foreign_field;  /* "id" of the same, or NULL */
  const kdao_schema *schema;  /* the static nested schema of a table field, or NULL */
  bool schema_fn;             /* the nested schema is chosen per entity (plugins' config) */
  bool has_default;           /* a default value or a computed default is defined */
} kdao_field_info;

/*
 * Fills *info with field `index` of `schema`. Returns false (and leaves *info untouched)
 * when `schema` or `info` is NULL or `index` is not below kdao_schema_field_count().
 */
KDAO_API bool kdao_schema_field_info(const kdao_schema *schema, size_t index,
                                     kdao_field_info *info);

/*
 * Number of primary-key fields of an entity schema (0 for nested schemas), and the name of
 * the i-th in key order (NULL when `i` is out of range). Borrowed from the schema.
 */
KDAO_API size_t kdao_schema_primary_key_count(const kdao_schema *schema);
KDAO_API const char *kdao_schema_primary_key(const kdao_schema *schema, size_t i);

/*
 * Validates `entity` against `schema` with Kong 0.10.4's algorithm and messages, on the
 * entity itself: defaults are filled, strings trimmed and coerced, `func` results merged —
 * so pass a copy if the original must stay untouched. `dao` (may be NULL) is handed to the
 * callbacks. Fails with KDAO_ERR_SCHEMA and the field map, or with the error a self_check
 * returned.
 */
KDAO_API kdao_status kdao_validate(const kdao_schema *schema, json_t *entity, kdao_mode mode,
                                   kdao_dao *dao, kdao_error **err);

/*
 * Kong's is_schema_subset for filters: every key must be a field ("unknown field") and
 * id-typed values valid UUIDs ("<v> is not a valid uuid"). KDAO_ERR_SCHEMA on failure.
 */
KDAO_API kdao_status kdao_validate_filter(const kdao_schema *schema, const json_t *filter,
                                          kdao_error **err);

/* True when `s` is a UUID in 8-4-4-4-12 hex form (any version, any case). */
KDAO_API bool kdao_is_uuid(const char *s);

/* ------------------------------------------------------------------------------------------
 * Plugins and migrations
 * ---------------------------------------------------------------------------------------- */

/*
 * One migration: a name (what schema_migrations records) and the statements to run, as one
 * text (several statements separated by ";"). Arrays end with an entry whose name is NULL.
 */
typedef struct kdao_migration_def {
  const char *name;
  const char *up;
} kdao_migration_def;

/*
 * A plugin's migrations for one backend, named as the `database` key names it ("sqlite",
 * "postgres", "cassandra"). Lists end with an entry whose backend is NULL.
 */
typedef struct kdao_plugin_migrations {
  const char *backend;
  const kdao_migration_def *migrations; /* NULL-name terminated */
} kdao_plugin_migrations;

/*
 * A plugin: its config schema (for plugins rows with this name), the entities it brings
 * (Kong's daos.lua) and its migrations by backend name. Only the entry of the factory's
 * backend is used; entries naming other backends, built into this library or not, are
 * ignored (one definition serves every build), and two entries for the factory's backend
 * are KDAO_ERR_MISUSE. When a plugin with entities has no migrations for the active
 * backend, kdao generates one named "<table>_init" that creates each entity's table from
 * its schema.
 */
typedef struct kdao_plugin_def {
  unsigned version;                         /* KDAO_DEF_VERSION (2) */
  const char *name;                         /* e.g. "key-auth" */
  const kdao_schema_def *config;            /* may be NULL: any config accepted */
  const kdao_schema_def *const *entities;   /* NULL-terminated, may be NULL */
  const kdao_plugin_migrations *migrations; /* backend == NULL terminated, may be NULL */
} kdao_plugin_def;

/* ------------------------------------------------------------------------------------------
 * Factory
 * ---------------------------------------------------------------------------------------- */

/* Event types delivered to a factory's event callback. */
typedef enum kdao_event_type {
  KDAO_EVENT_CREATED = 0, /* Kong's ENTITY_CREATED */
  KDAO_EVENT_UPDATED,     /* ENTITY_UPDATED */
  KDAO_EVENT_DELETED      /* ENTITY_DELETED */
} kdao_event_type;

/* Kong's name of an event type: "ENTITY_CREATED", "ENTITY_UPDATED", "ENTITY_DELETED". */
KDAO_API const char *kdao_event_type_name(kdao_event_type type);

/*
 * Callback for entity changes, called synchronously after each successful write that was
 * not quiet: `collection` is the table name, `entity` the row written (for deletes: the
 * deleted row; one call per row a cascade removed), `old_entity` the row before an update
 * (NULL for other events; Kong's payload carried the old row). Both are borrowed for the
 * duration of the call. The callback must not use the factory.
 */
typedef void (*kdao_event_fn)(const char *collection, kdao_event_type type, const json_t *entity,
                              const json_t *old_entity, void *ud);

/*
 * CONSTRUCTOR: a factory for `cfg` with the core entities (apis, consumers, plugins,
 * upstreams, targets, ssl_certificates, ssl_servers_names) and the built-in plugins
 * (key-auth, basic-auth, acl) registered, plus the JSON plugins found in the configured
 * plugins_dir. Nothing is connected yet: register more entities and plugins, then call
 * kdao_factory_connect(). Close with kdao_factory_free().
 */
KDAO_API kdao_status kdao_factory_new(const kdao_config *cfg, kdao_factory **out, kdao_error **err);

/*
 * Convenience: kdao_factory_new() + kdao_factory_connect() for users without custom
 * entities.
 */
KDAO_API kdao_status kdao_factory_open(const kdao_config *cfg, kdao_factory **out,
                                       kdao_error **err);

/*
 * Registers an entity schema (before connect). An entity with the name of an existing one
 * replaces it, as a Kong plugin's daos.lua could, in place: a kdao_dao * obtained earlier
 * stays valid and uses the new schema; the replaced schema stays valid (and unused) until
 * the factory is freed. KDAO_ERR_MISUSE after connect or for an invalid definition.
 */
KDAO_API kdao_status kdao_factory_register_entity(kdao_factory *f, const kdao_schema_def *def,
                                                  kdao_error **err);

/*
 * Registers a plugin (config schema, entities, migrations) before connect, all or nothing:
 * when any part is invalid (an entity, the config schema, a version 1 definition), nothing
 * of it is registered. A plugin of an existing name replaces it; its entities replace
 * entities as kdao_factory_register_entity() does.
 */
KDAO_API kdao_status kdao_factory_register_plugin(kdao_factory *f, const kdao_plugin_def *def,
                                                  kdao_error **err);

/*
 * Registers every plugin described by a JSON file `<dir>/<name>.json` (format in
 * docs/plugins.md). Fails without registering anything from a file that is invalid.
 */
KDAO_API kdao_status kdao_factory_load_plugin_dir(kdao_factory *f, const char *dir,
                                                  kdao_error **err);

/*
 * Builds the constraint graph (foreign, unique, cascade) and connects to the backend. A
 * `foreign` naming an entity that is not registered is KDAO_ERR_MISUSE.
 */
KDAO_API kdao_status kdao_factory_connect(kdao_factory *f, kdao_error **err);

/* DESTRUCTOR: closes the connection and frees every DAO and schema of the factory. */
KDAO_API void kdao_factory_free(kdao_factory *f);

/* The backend name, the `database` value that selected it ("sqlite", ...). */
KDAO_API const char *kdao_factory_db_name(const kdao_factory *f);

/*
 * Kong's infos(): {"desc": "database"|"keyspace"|"file", "name": ...}. New reference.
 */
KDAO_API json_t *kdao_factory_infos(const kdao_factory *f);

/* Sets (or clears with NULL) the entity-change callback. */
KDAO_API void kdao_factory_on_event(kdao_factory *f, kdao_event_fn fn, void *ud);

/* The DAO of entity `name`, or NULL when there is none. Borrowed from the factory. */
KDAO_API kdao_dao *kdao_factory_dao(kdao_factory *f, const char *name);

/* Names of all DAOs, as a JSON array sorted by name. New reference. */
KDAO_API json_t *kdao_factory_dao_names(const kdao_factory *f);

/* The config schema of plugin `name`, or NULL. Borrowed from the factory. */
KDAO_API const kdao_schema *kdao_factory_plugin_schema(const kdao_factory *f, const char *name);

/* Names of all registered plugins, as a sorted JSON array. New reference. */
KDAO_API json_t *kdao_factory_plugin_names(const kdao_factory *f);

/*
 * Progress callback for migrations: called after each migration `name` of `identifier`
 * ("core" or a plugin name) has run and been recorded.
 */
typedef void (*kdao_migration_fn)(const char *identifier, const char *name, void *ud);

/*
 * Runs pending migrations: "core" first, then plugins by name. A migration is pending when
 * its name is not recorded for its identifier (by name, not position: Kong 0.11's fix of
 * 0.10's positional matching). Each migration and its record are applied in one transaction
 * where the backend has them. Stops at the first failure with
 * "Error during migration <name>: <reason>". *ran (may be NULL) receives the count run.
 */
KDAO_API kdao_status kdao_factory_migrate(kdao_factory *f, kdao_migration_fn progress, void *ud,
                                          int *ran, kdao_error **err);

/*
 * The executed migrations: {"core": ["2015-01-12-175310_skeleton", ...], "key-auth": [...]}
 * (empty object when none). New reference through *out.
 */
KDAO_API kdao_status kdao_factory_migrations(kdao_factory *f, json_t **out, kdao_error **err);

/* Number of migrations not yet run (0 when up to date). */
KDAO_API kdao_status kdao_factory_pending_migrations(kdao_factory *f, int *pending,
                                                     kdao_error **err);

/* Drops every entity table, the backend's helper tables and schema_migrations. */
KDAO_API kdao_status kdao_factory_drop_schema(kdao_factory *f, kdao_error **err);

/* Empties every entity table (schema_migrations kept). */
KDAO_API kdao_status kdao_factory_truncate_tables(kdao_factory *f, kdao_error **err);

/* Removes rows whose TTL expired (reads never return them regardless). *purged may be NULL. */
KDAO_API kdao_status kdao_factory_purge_expired(kdao_factory *f, long long *purged,
                                                kdao_error **err);

/* ------------------------------------------------------------------------------------------
 * DAO
 * ---------------------------------------------------------------------------------------- */

/* Flags of DAO writes (insert, update, delete). */
#define KDAO_DAO_QUIET 0x1u /* publish no event for this write */
#define KDAO_DAO_FULL 0x2u  /* update: replace the whole entity (Kong's {full = true}) */

/* The DAO's name, table and schema. Borrowed. */
KDAO_API const char *kdao_dao_name(const kdao_dao *dao);
KDAO_API const char *kdao_dao_table(const kdao_dao *dao);
KDAO_API const kdao_schema *kdao_dao_schema(const kdao_dao *dao);
/* The factory owning `dao` (mutable in, mutable out, like kdao_factory_dao()). */
KDAO_API kdao_factory *kdao_dao_factory(kdao_dao *dao);

/*
 * Inserts an entity (a JSON object; strings are coerced as Kong's validator does). Generated
 * values (uuid v4 ids, created_at in ms) fill absent dao_insert_value fields. `ttl` > 0
 * makes the row expire after that many seconds (0: never). On success *row is the stored
 * row. Nothing is written when validation or a constraint fails.
 */
KDAO_API kdao_status kdao_dao_insert(kdao_dao *dao, const json_t *entity, int ttl, unsigned flags,
                                     json_t **row, kdao_error **err);

/*
 * Finds by primary key: `pk` must hold every primary-key field (else KDAO_ERR_MISUSE
 * "Missing PRIMARY KEY field"); other members are ignored. *row is NULL when not found.
 */
KDAO_API kdao_status kdao_dao_find(kdao_dao *dao, const json_t *pk, json_t **row, kdao_error **err);

/*
 * All rows matching every `field = value` of `filter` (NULL: all rows), as a JSON array in
 * primary-key order.
 */
KDAO_API kdao_status kdao_dao_find_all(kdao_dao *dao, const json_t *filter, json_t **rows,
                                       kdao_error **err);

/*
 * One page of rows matching `filter` (may be NULL), in primary-key order. `offset` is NULL
 * for the first page or a token from a previous call; `size` 0 means 100. *next receives
 * the token of the following page, or NULL on the last page, also when it is exactly full
 * (free with kdao_free). Tokens are opaque, keyset-based (the cost of a page does not grow
 * with its position) and stay valid while rows are inserted or deleted. They carry a MAC under
 * a key stored in the database (read at the first page that needs it), so a token is
 * accepted only by the entity and filter it was made for, from any factory on the same
 * database; anything else is KDAO_ERR_SCHEMA {offset = "invalid offset"} on every backend.
 */
KDAO_API kdao_status kdao_dao_find_page(kdao_dao *dao, const json_t *filter, const char *offset,
                                        size_t size, json_t **rows, char **next, kdao_error **err);

/* Number of rows matching `filter` (NULL: all). */
KDAO_API kdao_status kdao_dao_count(kdao_dao *dao, const json_t *filter, long long *count,
                                    kdao_error **err);

/*
 * Updates the row addressed by the primary key found in `values` (members of `filter_keys`
 * fill absent members of `values`, as in Kong). Partial by default: only given fields
 * change and nested tables (plugin config) are merged with the stored ones; with KDAO_DAO_FULL
 * the entity is replaced (defaults and required rules apply, absent fields become NULL).
 * `ttl` > 0 (re)sets an expiry. *row is the updated row, or NULL when no row matched.
 */
KDAO_API kdao_status kdao_dao_update(kdao_dao *dao, const json_t *values, const json_t *filter_keys,
                                     int ttl, unsigned flags, json_t **row, kdao_error **err);

/*
 * Deletes by primary key, and every row that references it through a `foreign` field,
 * transitively (one event per row removed). *row is the deleted row, or NULL when none
 * matched.
 */
KDAO_API kdao_status kdao_dao_delete(kdao_dao *dao, const json_t *pk, unsigned flags, json_t **row,
                                     kdao_error **err);

/* Removes every row of the entity (no events). */
KDAO_API kdao_status kdao_dao_truncate(kdao_dao *dao, kdao_error **err);

/*
 * Inserts many entities at once (one transaction or pipeline). Each element is validated
 * first; when any fails, nothing is written and the error names the element index as
 * "[<i>] <message>". *rows (may be NULL) receives the stored rows.
 */
KDAO_API kdao_status kdao_dao_insert_many(kdao_dao *dao, const json_t *entities, unsigned flags,
                                          json_t **rows, kdao_error **err);

#ifdef __cplusplus
}
#endif

#endif /* KDAO_H */
