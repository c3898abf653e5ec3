/*
 * migrations/sqlite.c — the SQLite schema of the core entities and the built-in plugins.
 *
 * The columns are Kong 0.10.4's (see the PostgreSQL dump in the spec) in SQLite's storage
 * classes: ids and strings TEXT, numbers INTEGER, booleans INTEGER 0/1, timestamps INTEGER
 * milliseconds since the epoch (UTC), arrays and tables TEXT holding JSON. SQLite databases
 * are kdao's own (Kong never read them), so the migrations carry kdao names and the schema
 * is the final one, not Kong's history replayed.
 *
 * Constraints are real: UNIQUE and ON DELETE CASCADE foreign keys (the backend turns
 * PRAGMA foreign_keys on), so the backend needs no read-before-write. Every column a DAO
 * filters or cascades on has an index.
 */
#include "backend.h"

/* created_at default, for rows written by hand: now, in integer milliseconds. */
#define NOW_MS "(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"

static const char core_init[] =
    "CREATE TABLE \"apis\" ("
    "  \"id\" TEXT NOT NULL PRIMARY KEY,"
    "  \"name\" TEXT UNIQUE,"
    "  \"upstream_url\" TEXT,"
    "  \"preserve_host\" INTEGER NOT NULL,"
    "  \"created_at\" INTEGER DEFAULT " NOW_MS ","
    "  \"retries\" INTEGER NOT NULL DEFAULT 5,"
    "  \"https_only\" INTEGER,"
    "  \"http_if_terminated\" INTEGER,"
    "  \"hosts\" TEXT,"
    "  \"uris\" TEXT,"
    "  \"methods\" TEXT,"
    "  \"strip_uri\" INTEGER,"
    "  \"upstream_connect_timeout\" INTEGER,"
    "  \"upstream_send_timeout\" INTEGER,"
    "  \"upstream_read_timeout\" INTEGER"
    ");"

    "CREATE TABLE \"consumers\" ("
    "  \"id\" TEXT NOT NULL PRIMARY KEY,"
    "  \"custom_id\" TEXT UNIQUE,"
    "  \"username\" TEXT UNIQUE,"
    "  \"created_at\" INTEGER DEFAULT " NOW_MS ");"

    "CREATE TABLE \"plugins\" ("
    "  \"id\" TEXT NOT NULL,"
    "  \"name\" TEXT NOT NULL,"
    "  \"api_id\" TEXT REFERENCES \"apis\" (\"id\") ON DELETE CASCADE,"
    "  \"consumer_id\" TEXT REFERENCES \"consumers\" (\"id\") ON DELETE CASCADE,"
    "  \"config\" TEXT NOT NULL,"
    "  \"enabled\" INTEGER NOT NULL,"
    "  \"created_at\" INTEGER DEFAULT " NOW_MS ","
    "  PRIMARY KEY (\"id\", \"name\")"
    ");"
    "CREATE INDEX \"plugins_name_idx\" ON \"plugins\" (\"name\");"
    "CREATE INDEX \"plugins_api_idx\" ON \"plugins\" (\"api_id\");"
    "CREATE INDEX \"plugins_consumer_idx\" ON \"plugins\" (\"consumer_id\");"
    /*
     * Kong checks "one plugin of a name per api/consumer pair" with a read before the
     * write, so two concurrent inserts can both pass. The index makes the rule atomic;
     * NULL means "any", hence ifnull (NULLs are distinct in a plain UNIQUE).
     */
    "CREATE UNIQUE INDEX \"plugins_name_api_consumer_key\" ON \"plugins\""
    "  (\"name\", ifnull(\"api_id\", ''), ifnull(\"consumer_id\", ''));"

    "CREATE TABLE \"upstreams\" ("
    "  \"id\" TEXT NOT NULL PRIMARY KEY,"
    "  \"name\" TEXT UNIQUE,"
    "  \"slots\" INTEGER NOT NULL,"
    "  \"orderlist\" TEXT NOT NULL,"
    "  \"created_at\" INTEGER DEFAULT " NOW_MS ");"

    "CREATE TABLE \"targets\" ("
    "  \"id\" TEXT NOT NULL PRIMARY KEY,"
    "  \"target\" TEXT NOT NULL,"
    "  \"weight\" INTEGER NOT NULL,"
    "  \"upstream_id\" TEXT REFERENCES \"upstreams\" (\"id\") ON DELETE CASCADE,"
    "  \"created_at\" INTEGER DEFAULT " NOW_MS ");"
    "CREATE INDEX \"targets_target_idx\" ON \"targets\" (\"target\");"
    "CREATE INDEX \"targets_upstream_id_idx\" ON \"targets\" (\"upstream_id\");"

    "CREATE TABLE \"ssl_certificates\" ("
    "  \"id\" TEXT NOT NULL PRIMARY KEY,"
    "  \"cert\" TEXT,"
    "  \"key\" TEXT,"
    "  \"created_at\" INTEGER DEFAULT " NOW_MS ");"

    "CREATE TABLE \"ssl_servers_names\" ("
    "  \"name\" TEXT NOT NULL PRIMARY KEY,"
    "  \"ssl_certificate_id\" TEXT"
    "    REFERENCES \"ssl_certificates\" (\"id\") ON DELETE CASCADE,"
    "  \"created_at\" INTEGER DEFAULT " NOW_MS ");"
    "CREATE INDEX \"ssl_servers_names_ssl_certificate_id_idx\""
    "  ON \"ssl_servers_names\" (\"ssl_certificate_id\");"

    /*
     * Expiry of rows written with a TTL, any table, any key: the key is the primary-key
     * value, or the JSON array of the values for a composite key.
     */
    "CREATE TABLE \"ttls\" ("
    "  \"primary_key_value\" TEXT NOT NULL,"
    "  \"table_name\" TEXT NOT NULL,"
    "  \"expire_at\" INTEGER NOT NULL,"
    "  PRIMARY KEY (\"primary_key_value\", \"table_name\")"
    ");"
    "CREATE INDEX \"ttls_expire_at_idx\" ON \"ttls\" (\"expire_at\")";

static const kdao_migration_def core_migrations[] = {
    {"2026-11-28-000000_init_core", core_init},
    {NULL, NULL},
};

static const kdao_migration_def keyauth_migrations[] = {
    {"2026-11-28-000000_init_keyauth",
     "CREATE TABLE \"keyauth_credentials\" ("
     "  \"id\" TEXT NOT NULL PRIMARY KEY,"
     "  \"consumer_id\" TEXT REFERENCES \"consumers\" (\"id\") ON DELETE CASCADE,"
     "  \"key\" TEXT UNIQUE,"
     "  \"created_at\" INTEGER DEFAULT " NOW_MS ");"
     "CREATE INDEX \"keyauth_consumer_idx\" ON \"keyauth_credentials\" (\"consumer_id\")"},
    {NULL, NULL},
};

static const kdao_migration_def basicauth_migrations[] = {
    {"2026-11-28-000000_init_basicauth",
     "CREATE TABLE \"basicauth_credentials\" ("
     "  \"id\" TEXT NOT NULL PRIMARY KEY,"
     "  \"consumer_id\" TEXT REFERENCES \"consumers\" (\"id\") ON DELETE CASCADE,"
     "  \"username\" TEXT UNIQUE,"
     "  \"password\" TEXT,"
     "  \"created_at\" INTEGER DEFAULT " NOW_MS ");"
     "CREATE INDEX \"basicauth_consumer_id_idx\""
     "  ON \"basicauth_credentials\" (\"consumer_id\")"},
    {NULL, NULL},
};

static const kdao_migration_def acl_migrations[] = {
    {"2026-11-28-000000_init_acl",
     "CREATE TABLE \"acls\" ("
     "  \"id\" TEXT NOT NULL PRIMARY KEY,"
     "  \"consumer_id\" TEXT REFERENCES \"consumers\" (\"id\") ON DELETE CASCADE,"
     "  \"group\" TEXT,"
     "  \"created_at\" INTEGER DEFAULT " NOW_MS ");"
     "CREATE INDEX \"acls_consumer_id_idx\" ON \"acls\" (\"consumer_id\");"
     "CREATE INDEX \"acls_group_idx\" ON \"acls\" (\"group\")"},
    {NULL, NULL},
};

const kdao__migration_set kdao__sqlite_migrations[] = {
    {"core", core_migrations},
    {"key-auth", keyauth_migrations},
    {"basic-auth", basicauth_migrations},
    {"acl", acl_migrations},
    {NULL, NULL},
};
