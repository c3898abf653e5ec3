/*
 * cassandra.c — the CQL migrations of Kong 0.10.4 (kong/dao/migrations/cassandra.lua and the
 * bundled plugins' migrations/cassandra.lua), with Kong's exact names and order: the names
 * are what schema_migrations records, so a keyspace migrated by Kong 0.10.4 is up to date
 * for kdao and the other way round.
 *
 * Texts are run by the Cassandra backend, split on ';' and executed one by one on a session
 * already bound to the keyspace (USE <keyspace>): no statement names the keyspace, and none
 * may contain a ';' of its own.
 *
 * Kong ran some migrations as Lua functions that rewrite EXISTING rows through the DAO
 * (filling a new column with its default, moving request_host into hosts, ...). kdao
 * migrates empty keyspaces or keyspaces Kong already migrated, where those rewrites have
 * nothing to do: they are recorded with an empty text so that the recorded list matches
 * Kong's one for one.
 */
#include "backend.h"

static const kdao_migration_def core_migrations[] = {
    /*
     * Kong also created the keyspace here (replication from cassandra_repl_strategy,
     * cassandra_repl_factor, cassandra_data_centers); the kdao backend does that when it
     * connects, before any migration can be read or recorded.
     */
    {"2015-01-12-175310_skeleton", "CREATE TABLE IF NOT EXISTS schema_migrations(\n"
                                   "  id text PRIMARY KEY,\n"
                                   "  migrations list<text>\n"
                                   ");"},
    {"2015-01-12-175310_init_schema", "CREATE TABLE IF NOT EXISTS consumers(\n"
                                      "  id uuid,\n"
                                      "  custom_id text,\n"
                                      "  username text,\n"
                                      "  created_at timestamp,\n"
                                      "  PRIMARY KEY (id)\n"
                                      ");\n"
                                      "CREATE INDEX IF NOT EXISTS ON consumers(custom_id);\n"
                                      "CREATE INDEX IF NOT EXISTS ON consumers(username);\n"
                                      "CREATE TABLE IF NOT EXISTS apis(\n"
                                      "  id uuid,\n"
                                      "  name text,\n"
                                      "  request_host text,\n"
                                      "  request_path text,\n"
                                      "  strip_request_path boolean,\n"
                                      "  upstream_url text,\n"
                                      "  preserve_host boolean,\n"
                                      "  created_at timestamp,\n"
                                      "  PRIMARY KEY (id)\n"
                                      ");\n"
                                      "CREATE INDEX IF NOT EXISTS ON apis(name);\n"
                                      "CREATE INDEX IF NOT EXISTS ON apis(request_host);\n"
                                      "CREATE INDEX IF NOT EXISTS ON apis(request_path);\n"
                                      /* config holds the plugin configuration as JSON text. */
                                      "CREATE TABLE IF NOT EXISTS plugins(\n"
                                      "  id uuid,\n"
                                      "  api_id uuid,\n"
                                      "  consumer_id uuid,\n"
                                      "  name text,\n"
                                      "  config text,\n"
                                      "  enabled boolean,\n"
                                      "  created_at timestamp,\n"
                                      "  PRIMARY KEY (id, name)\n"
                                      ");\n"
                                      "CREATE INDEX IF NOT EXISTS ON plugins(name);\n"
                                      "CREATE INDEX IF NOT EXISTS ON plugins(api_id);\n"
                                      "CREATE INDEX IF NOT EXISTS ON plugins(consumer_id);"},
    /*
     * Kong 0.10's cluster membership (serf). kdao has no `nodes` entity, but the table is
     * part of a 0.10.4 keyspace. Rows first expired by the table's default TTL (an hour);
     * remove_ttls set it back to 0, Kong then giving each insert its own TTL.
     */
    {"2015-11-23-817313_nodes", "CREATE TABLE IF NOT EXISTS nodes(\n"
                                "  name text,\n"
                                "  cluster_listening_address text,\n"
                                "  created_at timestamp,\n"
                                "  PRIMARY KEY (name)\n"
                                ") WITH default_time_to_live = 3600;\n"
                                "CREATE INDEX IF NOT EXISTS ON nodes(cluster_listening_address);"},
    /* Data: Kong cleared consumer_id on plugins stored with the nil UUID. */
    {"2016-02-25-160900_remove_null_consumer_id", ""},
    {"2016-02-29-121813_remove_ttls", "ALTER TABLE nodes WITH default_time_to_live = 0;"},
    {"2016-09-05-212515_retries_step_1", "ALTER TABLE apis ADD retries int;"},
    /* Data: Kong set retries = 5 on every existing API. */
    {"2016-09-05-212515_retries_step_2", ""},
    {"2016-09-16-141423_upstreams", "CREATE TABLE IF NOT EXISTS upstreams(\n"
                                    "  id uuid,\n"
                                    "  name text,\n"
                                    "  slots int,\n"
                                    "  orderlist text,\n"
                                    "  created_at timestamp,\n"
                                    "  PRIMARY KEY (id)\n"
                                    ");\n"
                                    "CREATE INDEX IF NOT EXISTS ON upstreams(name);\n"
                                    "CREATE TABLE IF NOT EXISTS targets(\n"
                                    "  id uuid,\n"
                                    "  target text,\n"
                                    "  weight int,\n"
                                    "  upstream_id uuid,\n"
                                    "  created_at timestamp,\n"
                                    "  PRIMARY KEY (id)\n"
                                    ");\n"
                                    "CREATE INDEX IF NOT EXISTS ON targets(upstream_id);"},
    /* Listed before new_apis_router_1 although dated later: Kong's order, kept. */
    {"2016-12-14-172100_move_ssl_certs_to_core",
     "CREATE TABLE ssl_certificates(\n"
     "  id uuid PRIMARY KEY,\n"
     "  cert text,\n"
     "  key text,\n"
     "  created_at timestamp\n"
     ");\n"
     "CREATE TABLE ssl_servers_names(\n"
     "  name text,\n"
     "  ssl_certificate_id uuid,\n"
     "  created_at timestamp,\n"
     "  PRIMARY KEY (name, ssl_certificate_id)\n"
     ");\n"
     "CREATE INDEX IF NOT EXISTS ON ssl_servers_names(ssl_certificate_id);\n"
     "ALTER TABLE apis ADD https_only boolean;\n"
     "ALTER TABLE apis ADD http_if_terminated boolean;"},
    {"2016-11-11-151900_new_apis_router_1", "ALTER TABLE apis ADD hosts text;\n"
                                            "ALTER TABLE apis ADD uris text;\n"
                                            "ALTER TABLE apis ADD methods text;\n"
                                            "ALTER TABLE apis ADD strip_uri boolean;"},
    /* Data: Kong moved request_host/request_path into hosts/uris and trimmed upstream_url. */
    {"2016-11-11-151900_new_apis_router_2", ""},
    /*
     * Cassandra refuses to drop an indexed column. Kong looked the two indexes up in the
     * system schema tables and dropped them by name; the names init_schema gave them are
     * Cassandra's defaults, <table>_<column>_idx, and IF EXISTS keeps this idempotent.
     */
    {"2016-11-11-151900_new_apis_router_3", "DROP INDEX IF EXISTS apis_request_host_idx;\n"
                                            "DROP INDEX IF EXISTS apis_request_path_idx;\n"
                                            "ALTER TABLE apis DROP request_host;\n"
                                            "ALTER TABLE apis DROP request_path;\n"
                                            "ALTER TABLE apis DROP strip_request_path;"},
    {"2017-01-24-132600_upstream_timeouts", "ALTER TABLE apis ADD upstream_connect_timeout int;\n"
                                            "ALTER TABLE apis ADD upstream_send_timeout int;\n"
                                            "ALTER TABLE apis ADD upstream_read_timeout int;"},
    /* Data: Kong set the three timeouts to 60000 on every existing API. */
    {"2017-01-24-132600_upstream_timeouts_2", ""},
    {NULL, NULL},
};

static const kdao_migration_def keyauth_migrations[] = {
    {"2015-07-31-172400_init_keyauth",
     "CREATE TABLE IF NOT EXISTS keyauth_credentials(\n"
     "  id uuid,\n"
     "  consumer_id uuid,\n"
     "  key text,\n"
     "  created_at timestamp,\n"
     "  PRIMARY KEY (id)\n"
     ");\n"
     "CREATE INDEX IF NOT EXISTS ON keyauth_credentials(key);\n"
     "CREATE INDEX IF NOT EXISTS keyauth_consumer_id ON keyauth_credentials(consumer_id);"},
    {NULL, NULL},
};

static const kdao_migration_def basicauth_migrations[] = {
    {"2015-08-03-132400_init_basicauth",
     "CREATE TABLE IF NOT EXISTS basicauth_credentials(\n"
     "  id uuid,\n"
     "  consumer_id uuid,\n"
     "  username text,\n"
     "  password text,\n"
     "  created_at timestamp,\n"
     "  PRIMARY KEY (id)\n"
     ");\n"
     "CREATE INDEX IF NOT EXISTS ON basicauth_credentials(username);\n"
     "CREATE INDEX IF NOT EXISTS basicauth_consumer_id ON basicauth_credentials(consumer_id);"},
    {NULL, NULL},
};

/* `group` is a keyword Cassandra leaves unreserved: usable unquoted, as Kong did. */
static const kdao_migration_def acl_migrations[] = {
    {"2015-08-25-841841_init_acl",
     "CREATE TABLE IF NOT EXISTS acls(\n"
     "  id uuid,\n"
     "  consumer_id uuid,\n"
     "  group text,\n"
     "  created_at timestamp,\n"
     "  PRIMARY KEY (id)\n"
     ");\n"
     "CREATE INDEX IF NOT EXISTS ON acls(group);\n"
     "CREATE INDEX IF NOT EXISTS acls_consumer_id ON acls(consumer_id);"},
    {NULL, NULL},
};

const kdao__migration_set kdao__cassandra_migrations[] = {
    {"core", core_migrations},
    {"key-auth", keyauth_migrations},
    {"basic-auth", basicauth_migrations},
    {"acl", acl_migrations},
    {NULL, NULL},
};
