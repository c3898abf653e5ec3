/*
 * test_pg_schema.c — on-disk compatibility with Kong 0.10.4, checked against the project's
 * reference facts (tests/reference/kong-0.10.4-postgres.facts) rather than against
 * expectations written here.
 *
 * kdao migrates an empty database, and the catalog queries that produced the reference facts
 * run on it. For every table kdao creates, its columns (name, position, type, length,
 * nullability, default), constraints (name, kind, definition) and indexes (name, definition)
 * must be the reference's, and so must the functions kdao creates. The reference holds more
 * tables than kdao creates (Kong's other bundled plugins); kdao's tables must be a subset of
 * them. The names kdao records in schema_migrations must be the reference's for the same
 * identifiers, and the rows Kong records must leave kdao nothing pending.
 *
 * Tables whose name starts with `kdao_` are kdao's own (kdao_secrets: the page token key),
 * created when first needed rather than by a migration, and are left out of the comparison.
 */
#include "facts.h"
#include "pg_test.h"

#ifndef KDAO_REFERENCE_DIR
#error "KDAO_REFERENCE_DIR (tests/reference) is set by tests/postgres/CMakeLists.txt"
#endif

static const char FACTS[] = KDAO_REFERENCE_DIR "/kong-0.10.4-postgres.facts";

/* Named after KDAO_PG_DATABASE so that two checkouts sharing a server do not collide. */
static char DB[128];

/* One catalog fact per line, in the reference's format (see the facts file's header). */
static const char *const CATALOG_QUERIES[] = {
    /* position as rank: a column Kong added then dropped leaves a gap in attnum */
    "SELECT table_name || '|column ' || rank() OVER (PARTITION BY table_name"
    "  ORDER BY ordinal_position) || '|' || column_name || ' ' || data_type || ' '"
    "  || coalesce(character_maximum_length::text, '-') || ' ' || udt_name || ' '"
    "  || is_nullable || ' ' || coalesce(column_default, '-')"
    " FROM information_schema.columns WHERE table_schema = 'public'",
    "SELECT conrelid::regclass::text || '|constraint ' || conname || '|' || contype::text || ' '"
    "  || pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    "SELECT tablename || '|index ' || indexname || '|' || indexdef"
    " FROM pg_indexes WHERE schemaname = 'public'",
    "SELECT '(function)|' || proname || '|' || pg_get_function_identity_arguments(p.oid)"
    "  || ' -> ' || pg_get_function_result(p.oid) || ' ' || l.lanname"
    " FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
    " WHERE pronamespace = 'public'::regnamespace",
};

static ref_lines catalog(PGconn *c) {
  ref_lines l = {0};
  for (size_t q = 0; q < sizeof CATALOG_QUERIES / sizeof *CATALOG_QUERIES; q++) {
    PGresult *r = pgt_exec(c, CATALOG_QUERIES[q]);
    for (int i = 0; i < PQntuples(r); i++)
      if (strncmp(PQgetvalue(r, i, 0), "kdao_", 5) != 0) ref_lines_add(&l, PQgetvalue(r, i, 0));
    PQclear(r);
  }
  ref_lines_sort(&l);
  return l;
}

static void load_reference(ref_lines *catalog, ref_lines *migrations) {
  if (ref_load(FACTS, catalog, migrations) != 0) fail_msg("cannot load %s", FACTS);
  assert_true(catalog->n > 0 && migrations->n > 0);
}

static int migrate(void **state) {
  snprintf(DB, sizeof DB, "%s_schema", pgt_env("KDAO_PG_DATABASE", "kdao_test"));
  pgt_fresh_database(DB);
  *state = pgt_factory(DB);
  return 0;
}

static int close_factory(void **state) {
  kdao_factory_free(*state);
  return 0;
}

static void assert_nothing_pending(kdao_factory *f) {
  int pending = -1;
  kdao_error *err = NULL;
  if (kdao_factory_pending_migrations(f, &pending, &err) != KDAO_OK)
    fail_msg("pending: %s", kdao_error_string(err));
  assert_int_equal(pending, 0);
}

/*
 * Pages through two consumers, which makes kdao create its own table for the page key: it is
 * there, and the comparison below sees it and must leave it out.
 */
static void page_once(PGconn *c, kdao_factory *f) {
  json_decref(pgt_insert(f, "consumers", "{\"username\": \"page-1\"}", 0));
  json_decref(pgt_insert(f, "consumers", "{\"username\": \"page-2\"}", 0));
  json_t *rows = NULL;
  char *next = NULL;
  kdao_error *err = NULL;
  if (kdao_dao_find_page(kdao_factory_dao(f, "consumers"), NULL, NULL, 1, &rows, &next, &err) !=
      KDAO_OK)
    fail_msg("page: %s", kdao_error_string(err));
  assert_non_null(next);
  json_decref(rows);
  kdao_free(next);
  char *n = pgt_value(c, "SELECT count(*) FROM kdao_secrets");
  assert_string_equal(n, "1");
  free(n);
}

static void test_migrated_schema_matches_kong(void **state) {
  ref_lines ref = {0}, ref_migrations = {0};
  load_reference(&ref, &ref_migrations);
  PGconn *c = pgt_connect(DB);
  page_once(c, *state);
  ref_lines ours = catalog(c);
  /* the core tables at least: the queries saw something */
  assert_true(ref_subject_count(&ours) >= 10);

  fprintf(stderr, "--- %s\n+++ database %s, migrated by kdao\n", FACTS, DB);
  size_t differences = ref_compare_catalog(&ours, &ref, stderr);

  ref_lines recorded = {0};
  PGresult *r = pgt_exec(c, "SELECT id, m FROM schema_migrations,"
                            " unnest(migrations) WITH ORDINALITY AS u(m, n) ORDER BY id, n");
  for (int i = 0; i < PQntuples(r); i++)
    ref_lines_add_migration(&recorded, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
  PQclear(r);
  assert_true(recorded.n > 0);
  differences += ref_compare_migrations(&recorded, &ref_migrations, stderr);
  fprintf(stderr, "%zu catalog facts and %zu migration names of kdao compared, %zu differences\n",
          ours.n, recorded.n, differences);
  assert_int_equal(differences, 0);
  assert_nothing_pending(*state);

  ref_lines_free(&ref);
  ref_lines_free(&ref_migrations);
  ref_lines_free(&ours);
  ref_lines_free(&recorded);
  PQfinish(c);
}

/*
 * A database Kong 0.10.4 migrated records every identifier it knows, plugins kdao does not
 * carry included: those rows must leave kdao nothing to do. The tables are kdao's own, which
 * the test above proved to be Kong's.
 */
static void test_kong_records_are_up_to_date_for_kdao(void **state) {
  (void)state;
  ref_lines ref = {0}, migrations = {0};
  load_reference(&ref, &migrations);
  PGconn *c = pgt_connect(DB);
  PQclear(pgt_exec(c, "TRUNCATE schema_migrations"));
  const size_t skip = strlen("migration|");
  for (size_t i = 0; i < migrations.n;) {
    /* the reference lists an identifier's names on consecutive lines: one row per run */
    const char *id = migrations.v[i] + skip;
    size_t id_len = strcspn(id, "|");
    char *identifier = strndup(id, id_len);
    char arr[4096] = "{";
    size_t used = 1;
    for (; i < migrations.n && strncmp(migrations.v[i] + skip, id, id_len + 1) == 0; i++) {
      used += (size_t)snprintf(arr + used, sizeof arr - used, "%s\"%s\"", used > 1 ? "," : "",
                               migrations.v[i] + skip + id_len + 1);
      if (used + 2 > sizeof arr) fail_msg("the names of '%s' do not fit", identifier);
    }
    arr[used++] = '}';
    arr[used] = '\0';
    const char *vals[2] = {identifier, arr};
    PGresult *r = PQexecParams(c, "INSERT INTO schema_migrations VALUES ($1, $2)", 2, NULL, vals,
                               NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s", PQerrorMessage(c));
    PQclear(r);
    free(identifier);
  }
  PQfinish(c);

  kdao_config *cfg = pgt_config(DB);
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_factory_open(cfg, &f, &err) != KDAO_OK) fail_msg("open: %s", kdao_error_string(err));
  kdao_config_free(cfg);
  assert_nothing_pending(f);
  json_t *api = pgt_insert(f, "apis",
                           "{\"name\": \"on-kong\", \"hosts\": [\"k.example\"],"
                           " \"upstream_url\": \"http://up\"}",
                           0);
  json_t *found = pgt_find(f, "apis", "id", pgt_str(api, "id"));
  assert_true(json_equal(api, found));
  json_decref(api);
  json_decref(found);
  kdao_factory_free(f);
  ref_lines_free(&ref);
  ref_lines_free(&migrations);
}

int main(void) {
  pgt_require_server();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_migrated_schema_matches_kong),
      cmocka_unit_test(test_kong_records_are_up_to_date_for_kdao),
  };
  int failed = cmocka_run_group_tests_name("postgres_schema", tests, migrate, close_factory);
  if (failed == 0) pgt_drop_database(DB);
  return failed;
}
