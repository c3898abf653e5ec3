/*
 * migrations/postgres.c — the PostgreSQL migrations of the core entities and the built-in
 * plugins, under Kong 0.10.4's names and in Kong's order.
 *
 * Compatibility is the whole point of this file: a database these migrations leave must be
 * indistinguishable (tables, column types and order, defaults, constraints and their names,
 * indexes, schema_migrations rows) from one Kong 0.10.4 leaves, so that either program sees
 * the other's database as up to date. The steps therefore replay Kong's history literally —
 * including columns created by one migration and dropped by a later one — because a database
 * migrated by an older Kong sits at one of those intermediate states, and kdao must be able
 * to carry it forward exactly as Kong would. tests/postgres/test_pg_schema.c checks the end
 * state against Kong 0.10.4's schema as facts (tests/reference/kong-0.10.4-postgres.facts).
 *
 * Kong wrote three migrations as Lua functions. Their equivalents here are SQL:
 *  - 2015-01-12-175310_skeleton only ran SQL from Lua;
 *  - 2016-11-11-151900_new_apis_router_2 moved request_host/request_path into the JSON
 *    arrays hosts/uris, copied strip_request_path into strip_uri and trimmed trailing
 *    slashes from upstream_url: one UPDATE does the same for every row;
 *  - 2017-01-24-132600_upstream_timeouts_2 gave every api missing one of the three timeouts
 *    all three at 60000 (Kong's partial update): one UPDATE again.
 * Kong's `CREATE INDEX` guards (`DO $$ ... to_regclass ... $$`) are spelled as
 * `CREATE INDEX IF NOT EXISTS`, which has the same effect.
 */
#include "backend.h"

static const kdao_migration_def core_migrations[] = {
    {"2015-01-12-175310_skeleton", "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                   "  id text PRIMARY KEY,"
                                   "  migrations varchar(100)[]"
                                   ")"},

    {"2015-01-12-175310_init_schema",
     "CREATE TABLE IF NOT EXISTS consumers ("
     "  id uuid PRIMARY KEY,"
     "  custom_id text,"
     "  username text UNIQUE,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(0) AT TIME ZONE 'utc')"
     ");"
     "CREATE INDEX IF NOT EXISTS custom_id_idx ON consumers (custom_id);"
     "CREATE INDEX IF NOT EXISTS username_idx ON consumers ((lower(username)));"
     "CREATE TABLE IF NOT EXISTS apis ("
     "  id uuid PRIMARY KEY,"
     "  name text UNIQUE,"
     "  request_host text UNIQUE,"
     "  request_path text UNIQUE,"
     "  strip_request_path boolean NOT NULL,"
     "  upstream_url text,"
     "  preserve_host boolean NOT NULL,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(0) AT TIME ZONE 'utc')"
     ");"
     "CREATE INDEX IF NOT EXISTS apis_name_idx ON apis (name);"
     "CREATE INDEX IF NOT EXISTS apis_request_host_idx ON apis (request_host);"
     "CREATE INDEX IF NOT EXISTS apis_request_path_idx ON apis (request_path);"
     "CREATE TABLE IF NOT EXISTS plugins ("
     "  id uuid,"
     "  name text NOT NULL,"
     "  api_id uuid REFERENCES apis (id) ON DELETE CASCADE,"
     "  consumer_id uuid REFERENCES consumers (id) ON DELETE CASCADE,"
     "  config json NOT NULL,"
     "  enabled boolean NOT NULL,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(0) AT TIME ZONE 'utc'),"
     "  PRIMARY KEY (id, name)"
     ");"
     "CREATE INDEX IF NOT EXISTS plugins_name_idx ON plugins (name);"
     "CREATE INDEX IF NOT EXISTS plugins_api_idx ON plugins (api_id);"
     "CREATE INDEX IF NOT EXISTS plugins_consumer_idx ON plugins (consumer_id)"},

    /* Serf cluster membership: no kdao entity reads it, but Kong 0.10 needs the table. */
    {"2015-11-23-817313_nodes", "CREATE TABLE IF NOT EXISTS nodes ("
                                "  name text,"
                                "  cluster_listening_address text,"
                                "  created_at timestamp without time zone"
                                "    DEFAULT (CURRENT_TIMESTAMP(0) AT TIME ZONE 'utc'),"
                                "  PRIMARY KEY (name)"
                                ");"
                                "CREATE INDEX IF NOT EXISTS nodes_cluster_listening_address_idx"
                                "  ON nodes (cluster_listening_address)"},

    /* upsert_ttl is what Kong calls to set an expiry; kdao writes ttls itself but keeps the
     * function so that a Kong node sharing the database finds it. */
    {"2016-02-29-142793_ttls",
     "CREATE TABLE IF NOT EXISTS ttls ("
     "  primary_key_value text NOT NULL,"
     "  primary_uuid_value uuid,"
     "  table_name text NOT NULL,"
     "  primary_key_name text NOT NULL,"
     "  expire_at timestamp without time zone NOT NULL,"
     "  PRIMARY KEY (primary_key_value, table_name)"
     ");"
     "CREATE OR REPLACE FUNCTION upsert_ttl(v_primary_key_value text,"
     "    v_primary_uuid_value uuid, v_primary_key_name text, v_table_name text,"
     "    v_expire_at timestamp) RETURNS void AS $$\n"
     "      BEGIN\n"
     "        LOOP\n"
     "          UPDATE ttls SET expire_at = v_expire_at"
     " WHERE primary_key_value = v_primary_key_value AND table_name = v_table_name;\n"
     "          IF found then\n"
     "            RETURN;\n"
     "          END IF;\n"
     "          BEGIN\n"
     "            INSERT INTO ttls(primary_key_value, primary_uuid_value, primary_key_name,"
     " table_name, expire_at) VALUES(v_primary_key_value, v_primary_uuid_value,"
     " v_primary_key_name, v_table_name, v_expire_at);\n"
     "            RETURN;\n"
     "          EXCEPTION WHEN unique_violation THEN\n"
     "            -- another writer inserted first: update its row instead\n"
     "          END;\n"
     "        END LOOP;\n"
     "      END;\n"
     "      $$ LANGUAGE plpgsql"},

    {"2016-09-05-212515_retries",
     "ALTER TABLE apis ADD COLUMN IF NOT EXISTS retries smallint NOT NULL DEFAULT 5"},

    /* Millisecond creation times here, unlike the older tables (Kong's choice). */
    {"2016-09-16-141423_upstreams",
     "CREATE TABLE IF NOT EXISTS upstreams ("
     "  id uuid PRIMARY KEY,"
     "  name text UNIQUE,"
     "  slots int NOT NULL,"
     "  orderlist text NOT NULL,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(3) AT TIME ZONE 'utc')"
     ");"
     "CREATE INDEX IF NOT EXISTS upstreams_name_idx ON upstreams (name);"
     "CREATE TABLE IF NOT EXISTS targets ("
     "  id uuid PRIMARY KEY,"
     "  target text NOT NULL,"
     "  weight int NOT NULL,"
     "  upstream_id uuid REFERENCES upstreams (id) ON DELETE CASCADE,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(3) AT TIME ZONE 'utc')"
     ");"
     "CREATE INDEX IF NOT EXISTS targets_target_idx ON targets (target)"},

    {"2016-12-14-172100_move_ssl_certs_to_core",
     "CREATE TABLE ssl_certificates ("
     "  id uuid PRIMARY KEY,"
     "  cert text,"
     "  key text,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(0) AT TIME ZONE 'utc')"
     ");"
     "CREATE TABLE ssl_servers_names ("
     "  name text PRIMARY KEY,"
     "  ssl_certificate_id uuid REFERENCES ssl_certificates (id) ON DELETE CASCADE,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(0) AT TIME ZONE 'utc')"
     ");"
     "ALTER TABLE apis ADD https_only boolean;"
     "ALTER TABLE apis ADD http_if_terminated boolean"},

    {"2016-11-11-151900_new_apis_router_1",
     "ALTER TABLE apis ADD COLUMN IF NOT EXISTS hosts text;"
     "ALTER TABLE apis ADD COLUMN IF NOT EXISTS uris text;"
     "ALTER TABLE apis ADD COLUMN IF NOT EXISTS methods text;"
     "ALTER TABLE apis ADD COLUMN IF NOT EXISTS strip_uri boolean"},

    /* Kong: a Lua loop over every api. Same result: the old single host and path become
     * one-element JSON arrays (Kong leaves the new column alone when the old one was empty),
     * trailing slashes leave upstream_url. */
    {"2016-11-11-151900_new_apis_router_2",
     "UPDATE apis SET"
     "  upstream_url = regexp_replace(upstream_url, '/+$', ''),"
     "  hosts = CASE WHEN coalesce(request_host, '') <> ''"
     "    THEN json_build_array(request_host)::text ELSE hosts END,"
     "  uris = CASE WHEN coalesce(request_path, '') <> ''"
     "    THEN json_build_array(request_path)::text ELSE uris END,"
     "  strip_uri = strip_request_path"},

    {"2016-11-11-151900_new_apis_router_3",
     "DROP INDEX IF EXISTS apis_request_host_idx;"
     "DROP INDEX IF EXISTS apis_request_path_idx;"
     "ALTER TABLE apis DROP COLUMN IF EXISTS request_host;"
     "ALTER TABLE apis DROP COLUMN IF EXISTS request_path;"
     "ALTER TABLE apis DROP COLUMN IF EXISTS strip_request_path"},

    {"2016-01-25-103600_unique_custom_id",
     "ALTER TABLE consumers ADD CONSTRAINT consumers_custom_id_key UNIQUE (custom_id)"},

    {"2017-01-24-132600_upstream_timeouts", "ALTER TABLE apis ADD upstream_connect_timeout integer;"
                                            "ALTER TABLE apis ADD upstream_send_timeout integer;"
                                            "ALTER TABLE apis ADD upstream_read_timeout integer"},

    /* Kong: apis:update() of the three timeouts for each api missing any of them. */
    {"2017-01-24-132600_upstream_timeouts_2",
     "UPDATE apis SET upstream_connect_timeout = 60000,"
     "  upstream_send_timeout = 60000, upstream_read_timeout = 60000"
     " WHERE upstream_connect_timeout IS NULL OR upstream_send_timeout IS NULL"
     "  OR upstream_read_timeout IS NULL"},

    {NULL, NULL},
};

static const kdao_migration_def keyauth_migrations[] = {
    {"2015-07-31-172400_init_keyauth",
     "CREATE TABLE IF NOT EXISTS keyauth_credentials ("
     "  id uuid,"
     "  consumer_id uuid REFERENCES consumers (id) ON DELETE CASCADE,"
     "  key text UNIQUE,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(0) AT TIME ZONE 'utc'),"
     "  PRIMARY KEY (id)"
     ");"
     "CREATE INDEX IF NOT EXISTS keyauth_key_idx ON keyauth_credentials (key);"
     "CREATE INDEX IF NOT EXISTS keyauth_consumer_idx ON keyauth_credentials (consumer_id)"},
    {NULL, NULL},
};

static const kdao_migration_def basicauth_migrations[] = {
    {"2015-08-03-132400_init_basicauth",
     "CREATE TABLE IF NOT EXISTS basicauth_credentials ("
     "  id uuid,"
     "  consumer_id uuid REFERENCES consumers (id) ON DELETE CASCADE,"
     "  username text,"
     "  password text,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(0) AT TIME ZONE 'utc'),"
     "  PRIMARY KEY (id)"
     ");"
     "CREATE INDEX IF NOT EXISTS basicauth_username_idx ON basicauth_credentials (username);"
     "CREATE INDEX IF NOT EXISTS basicauth_consumer_id_idx"
     "  ON basicauth_credentials (consumer_id)"},
    {"2017-01-25-180400_unique_username",
     "ALTER TABLE basicauth_credentials"
     "  ADD CONSTRAINT basicauth_credentials_username_key UNIQUE (username)"},
    {NULL, NULL},
};

static const kdao_migration_def acl_migrations[] = {
    {"2015-08-25-841841_init_acl",
     "CREATE TABLE IF NOT EXISTS acls ("
     "  id uuid,"
     "  consumer_id uuid REFERENCES consumers (id) ON DELETE CASCADE,"
     "  \"group\" text,"
     "  created_at timestamp without time zone"
     "    DEFAULT (CURRENT_TIMESTAMP(0) AT TIME ZONE 'utc'),"
     "  PRIMARY KEY (id)"
     ");"
     "CREATE INDEX IF NOT EXISTS acls_group ON acls (\"group\");"
     "CREATE INDEX IF NOT EXISTS acls_consumer_id ON acls (consumer_id)"},
    {NULL, NULL},
};

const kdao__migration_set kdao__postgres_migrations[] = {
    {"core", core_migrations},
    {"key-auth", keyauth_migrations},
    {"basic-auth", basicauth_migrations},
    {"acl", acl_migrations},
    {NULL, NULL},
};
