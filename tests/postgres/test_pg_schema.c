/*
 * test_pg_schema.c — on-disk compatibility with Kong 0.10.4, checked against the reference
 * dump rather than against expectations written here.
 *
 * Two databases: one migrated by kdao from empty, one loaded with the DDL that Kong 0.10.4's
 * migrations leave (shared/spec/kong-0.10.4-postgres-schema.sql). The same catalog queries
 * run on both; for every table kdao creates, its columns (name, position, type, length,
 * nullability, default), constraints (name, kind, definition), indexes (name, definition)
 * and the functions kdao creates must be identical. The dump holds more tables than kdao
 * creates (Kong's other bundled plugins); kdao's tables must be a subset of them. The
 * schema_migrations rows kdao records must equal the rows the dump lists for the same ids.
 */
#include "pg_test.h"

#ifndef KDAO_PG_SCHEMA_SPEC
#define KDAO_PG_SCHEMA_SPEC "../shared/spec/kong-0.10.4-postgres-schema.sql"
#endif

static const char DB_OURS[] = "kdao_test_ddl_kdao";
static const char DB_KONG[] = "kdao_test_ddl_kong";

/* One catalog fact per line: "<table>|<what>|<definition>". */
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

typedef struct lines {
  char **v;
  size_t n;
} lines;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lines_add(lines *l, const char *s) {
  l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
  assert_non_null(l->v);
  l->v[l->n++] = strdup(s);
}

static void lines_free(lines *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
}

static bool lines_has(const lines *l, const char *s) {
  return bsearch(&s, l->v, l->n, sizeof *l->v, cmp_str) != NULL;
}

static lines catalog(PGconn *c) {
  lines l = {0};
  for (size_t q = 0; q < sizeof CATALOG_QUERIES / sizeof *CATALOG_QUERIES; q++) {
    PGresult *r = pgt_exec(c, CATALOG_QUERIES[q]);
    for (int i = 0; i < PQntuples(r); i++) lines_add(&l, PQgetvalue(r, i, 0));
    PQclear(r);
  }
  qsort(l.v, l.n, sizeof *l.v, cmp_str);
  return l;
}

/* The subject of a fact: its table, or "(function)|name" for functions. */
static char *subject(const char *line) {
  const char *bar = strchr(line, '|');
  if (strncmp(line, "(function)|", 11) == 0) bar = strchr(bar + 1, '|');
  return strndup(line, (size_t)(bar - line));
}

static char *read_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) fail_msg("cannot read the reference schema %s", path);
  fseek(fp, 0, SEEK_END);
  long size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *buf = malloc((size_t)size + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
  buf[size] = '\0';
  fclose(fp);
  return buf;
}

/*
 * Loads the dump into DB_KONG. psql meta-commands (\restrict) are not SQL and are left
 * out; the rest is plain DDL that PQexec runs as one multi-statement script.
 */
static void load_reference(const char *text) {
  size_t len = strlen(text);
  char *sql = malloc(len + 1);
  assert_non_null(sql);
  size_t o = 0;
  for (const char *p = text; *p;) {
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p + 1) : strlen(p);
    if (*p != '\\') {
      memcpy(sql + o, p, n);
      o += n;
    }
    p += n;
  }
  sql[o] = '\0';
  PGconn *c = pgt_connect(DB_KONG);
  PQclear(pgt_exec(c, sql));
  PQfinish(c);
  free(sql);
}

static void test_migrated_schema_matches_kong(void **state) {
  (void)state;
  pgt_fresh_database(DB_OURS);
  pgt_fresh_database(DB_KONG);
  kdao_factory *f = pgt_factory(DB_OURS);
  char *spec = read_file(pgt_env("KDAO_PG_SCHEMA_SPEC", KDAO_PG_SCHEMA_SPEC));
  load_reference(spec);

  PGconn *ours_c = pgt_connect(DB_OURS), *kong_c = pgt_connect(DB_KONG);
  lines ours = catalog(ours_c), kong = catalog(kong_c);
  lines subjects = {0};
  for (size_t i = 0; i < ours.n; i++) {
    char *s = subject(ours.v[i]);
    if (subjects.n == 0 || strcmp(subjects.v[subjects.n - 1], s) != 0) lines_add(&subjects, s);
    free(s);
  }
  assert_true(subjects.n >= 10); /* the core tables at least: the query saw something */

  int differences = 0;
  for (size_t i = 0; i < ours.n; i++)
    if (!lines_has(&kong, ours.v[i])) {
      fprintf(stderr, "only in kdao's database: %s\n", ours.v[i]);
      differences++;
    }
  for (size_t i = 0; i < kong.n; i++) {
    char *s = subject(kong.v[i]);
    if (lines_has(&subjects, s) && !lines_has(&ours, kong.v[i])) {
      fprintf(stderr, "only in Kong's database: %s\n", kong.v[i]);
      differences++;
    }
    free(s);
  }
  assert_int_equal(differences, 0);

  /* schema_migrations: kdao's rows are the dump's rows for the same identifiers */
  PGresult *r = pgt_exec(ours_c, "SELECT id || '|' || migrations::text FROM schema_migrations");
  assert_true(PQntuples(r) >= 4); /* core, key-auth, basic-auth, acl */
  for (int i = 0; i < PQntuples(r); i++) {
    char want[4096];
    snprintf(want, sizeof want, "\n-- %s\n", PQgetvalue(r, i, 0));
    if (strstr(spec, want) == NULL)
      fail_msg("schema_migrations row not as Kong records it: %s", PQgetvalue(r, i, 0));
  }
  PQclear(r);

  /* and Kong's rows make kdao see an up-to-date database: nothing pending */
  int pending = -1;
  kdao_error *err = NULL;
  if (kdao_factory_pending_migrations(f, &pending, &err) != KDAO_OK)
    fail_msg("pending: %s", kdao_error_string(err));
  assert_int_equal(pending, 0);

  lines_free(&ours);
  lines_free(&kong);
  lines_free(&subjects);
  PQfinish(ours_c);
  PQfinish(kong_c);
  kdao_factory_free(f);
  free(spec);
}

/* A database Kong migrated (its schema_migrations rows) is up to date for kdao. */
static void test_kong_database_is_up_to_date_for_kdao(void **state) {
  (void)state;
  char *spec = read_file(pgt_env("KDAO_PG_SCHEMA_SPEC", KDAO_PG_SCHEMA_SPEC));
  PGconn *c = pgt_connect(DB_KONG);
  PQclear(pgt_exec(c, "TRUNCATE schema_migrations"));
  /* the dump's trailer: "-- <id>|{name,name,...}" */
  for (const char *p = strstr(spec, "\n-- "); p; p = strstr(p + 1, "\n-- ")) {
    const char *bar = strchr(p, '|'), *eol = strchr(p + 1, '\n');
    if (bar == NULL || (eol && bar > eol) || bar[1] != '{') continue;
    char *id = strndup(p + 4, (size_t)(bar - p - 4));
    char *arr = strndup(bar + 1, eol ? (size_t)(eol - bar - 1) : strlen(bar + 1));
    const char *vals[2] = {id, arr};
    PGresult *r = PQexecParams(c, "INSERT INTO schema_migrations VALUES ($1, $2)", 2, NULL, vals,
                               NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s", PQerrorMessage(c));
    PQclear(r);
    free(id);
    free(arr);
  }
  PQfinish(c);
  kdao_config *cfg = pgt_config(DB_KONG);
  kdao_factory *f = NULL;
  kdao_error *err = NULL;
  if (kdao_factory_open(cfg, &f, &err) != KDAO_OK) fail_msg("open: %s", kdao_error_string(err));
  int pending = -1;
  if (kdao_factory_pending_migrations(f, &pending, &err) != KDAO_OK)
    fail_msg("pending: %s", kdao_error_string(err));
  assert_int_equal(pending, 0);
  /* and kdao works on Kong's tables as they are */
  json_t *api = pgt_insert(f, "apis",
                           "{\"name\": \"on-kong\", \"hosts\": [\"k.example\"],"
                           " \"upstream_url\": \"http://up\"}",
                           0);
  json_t *found = pgt_find(f, "apis", "id", pgt_str(api, "id"));
  assert_true(json_equal(api, found));
  json_decref(api);
  json_decref(found);
  kdao_factory_free(f);
  kdao_config_free(cfg);
  free(spec);
}

int main(void) {
  pgt_require_server();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_migrated_schema_matches_kong),
      cmocka_unit_test(test_kong_database_is_up_to_date_for_kdao),
  };
  int failed = cmocka_run_group_tests_name("postgres_schema", tests, NULL, NULL);
  if (failed == 0) {
    pgt_drop_database(DB_OURS);
    pgt_drop_database(DB_KONG);
  }
  return failed;
}
