/*
 * cli_open.c — from the command line to a ready DAO: configuration, factory, migrations,
 * and the primary key of the row a command names.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_config(cli *c) {
  if (c->cfg != NULL) return CLI_OK;
  kdao_config *cfg = NULL;
  kdao_error *err = NULL;
  if (kdao_config_new(&cfg, &err) != KDAO_OK) return cli_fail(err);
  if ((c->conf_path != NULL && kdao_config_load_file(cfg, c->conf_path, &err) != KDAO_OK) ||
      kdao_config_load_env(cfg, &err) != KDAO_OK ||
      (c->plugins_dir != NULL &&
       kdao_config_set(cfg, "plugins_dir", c->plugins_dir, &err) != KDAO_OK) ||
      kdao_config_check(cfg, &err) != KDAO_OK) {
    kdao_config_free(cfg);
    return cli_fail(err);
  }
  c->cfg = cfg;
  return CLI_OK;
}

/*
 * An embedded database (a file: Kong's infos() says "file") is this tool's to set up, so a
 * fresh directory just works; a shared server's database is migrated only when someone says
 * so.
 */
static int cli_migrate_if_needed(cli *c) {
  int pending = 0;
  kdao_error *err = NULL;
  if (kdao_factory_pending_migrations(c->factory, &pending, &err) != KDAO_OK) return cli_fail(err);
  if (pending == 0) return CLI_OK;
  const char *db = kdao_factory_db_name(c->factory);
  json_t *infos = kdao_factory_infos(c->factory);
  const char *desc = json_string_value(json_object_get(infos, "desc"));
  if (desc == NULL || strcmp(desc, "file") != 0) {
    json_decref(infos);
    return cli_fail(
        kdao_error_new_db(KDAO_ERR_DB, db, "database needs migrations: run 'kdao migrations up'"));
  }
  int ran = 0;
  if (kdao_factory_migrate(c->factory, NULL, NULL, &ran, &err) != KDAO_OK) {
    json_decref(infos);
    return cli_fail(err);
  }
  cli_note("ran %d pending migration%s on %s", ran, ran == 1 ? "" : "s",
           json_string_value(json_object_get(infos, "name")));
  json_decref(infos);
  return CLI_OK;
}

int cli_factory(cli *c, bool ready) {
  if (c->factory == NULL) {
    int rc = cli_config(c);
    if (rc != CLI_OK) return rc;
    kdao_error *err = NULL;
    if (kdao_factory_open(c->cfg, &c->factory, &err) != KDAO_OK) return cli_fail(err);
  }
  return ready ? cli_migrate_if_needed(c) : CLI_OK;
}

kdao_dao *cli_dao(cli *c, const cli_command *cmd, const char *name) {
  kdao_dao *dao = kdao_factory_dao(c->factory, name);
  if (dao != NULL) return dao;
  json_t *names = kdao_factory_dao_names(c->factory);
  size_t len = 1, i;
  json_t *n;
  json_array_foreach(names, i, n) len += strlen(json_string_value(n)) + 2;
  char *list = calloc(1, len);
  json_array_foreach(names, i, n) {
    if (list == NULL) break;
    if (i > 0) strcat(list, ", ");
    strcat(list, json_string_value(n));
  }
  cli_usage_error(cmd, "unknown entity '%s' (%s)", name, list != NULL ? list : "");
  free(list);
  json_decref(names);
  return NULL;
}

/* ---- primary keys ---- */

static bool cli_is_pk_field(const kdao_schema *s, const char *name) {
  for (size_t i = 0; i < kdao_schema_primary_key_count(s); i++)
    if (strcmp(kdao_schema_primary_key(s, i), name) == 0) return true;
  return false;
}

/* Field `name` of `s` into *info; false when there is none. */
static bool cli_field_named(const kdao_schema *s, const char *name, kdao_field_info *info) {
  int idx = kdao_schema_field_index(s, name);
  return idx >= 0 && kdao_schema_field_info(s, (size_t)idx, info);
}

/* The field name of a `field=value` argument (into buf), or false if it is no assignment. */
static bool cli_arg_field(const char *arg, char *buf, size_t size) {
  if (!cli_is_assignment(arg)) return false;
  size_t len = (size_t)(strchr(arg, '=') - arg);
  if (len > 0 && arg[len - 1] == ':') len--;
  if (len >= size) return false;
  memcpy(buf, arg, len);
  buf[len] = '\0';
  return true;
}

int cli_pk_arg_count(kdao_dao *dao, char **args, int n) {
  if (n == 0) return 0;
  if (!cli_is_assignment(args[0])) return 1;
  const kdao_schema *s = kdao_dao_schema(dao);
  char field[128];
  int k = 0;
  while (k < n && cli_arg_field(args[k], field, sizeof field) && cli_is_pk_field(s, field)) k++;
  return k;
}

/* The primary-key members of `row`: a new object. */
static json_t *cli_pk_of(const kdao_schema *s, const json_t *row) {
  json_t *pk = json_object();
  for (size_t i = 0; pk != NULL && i < kdao_schema_primary_key_count(s); i++) {
    const char *name = kdao_schema_primary_key(s, i);
    json_t *v = json_object_get(row, name);
    if (v != NULL) json_object_set(pk, name, v);
  }
  return pk;
}

/* Finds the one row matching `filter` (stolen); *pk NULL when none. */
static int cli_lookup(const cli_command *cmd, kdao_dao *dao, json_t *filter, json_t **pk) {
  json_t *rows = NULL;
  kdao_error *err = NULL;
  int st = kdao_dao_find_all(dao, filter, &rows, &err);
  json_decref(filter);
  if (st != KDAO_OK) return cli_fail(err);
  size_t n = json_array_size(rows);
  int rc = CLI_OK;
  if (n > 1)
    rc = cli_usage_error(cmd, "%zu rows match: give every primary-key field", n);
  else if (n == 1 && (*pk = cli_pk_of(kdao_dao_schema(dao), json_array_get(rows, 0))) == NULL)
    rc = cli_fail(NULL);
  json_decref(rows);
  return rc;
}

/* Kong's Admin API accepts these instead of an id (crud_helpers.find_by_id_or_field). */
static const char *cli_alternate_field(const kdao_schema *s) {
  static const char *const candidates[] = {"name", "username"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    kdao_field_info f;
    if (cli_field_named(s, candidates[i], &f) && (f.flags & KDAO_FIELD_UNIQUE) &&
        !cli_is_pk_field(s, f.name))
      return f.name;
  }
  return NULL;
}

static json_t *cli_single(const char *field, const char *value) {
  return json_pack("{s:s}", field, value);
}

/* One value naming a row: an id, or a name/username, as Kong's Admin API resolves them. */
static int cli_resolve_value(const cli_command *cmd, kdao_dao *dao, const char *value,
                             json_t **pk) {
  const kdao_schema *s = kdao_dao_schema(dao);
  kdao_field_info first;
  if (!cli_field_named(s, kdao_schema_primary_key(s, 0), &first))
    return CLI_OK; /* unreachable for a DAO (the factory refuses entities without a key) */
  if (kdao_schema_primary_key_count(s) == 1 && first.type != KDAO_TYPE_ID) {
    *pk = cli_single(first.name, value);
    return *pk != NULL ? CLI_OK : cli_fail(NULL);
  }
  const char *alt = cli_alternate_field(s);
  if (first.type == KDAO_TYPE_ID && kdao_is_uuid(value)) {
    int rc = cli_lookup(cmd, dao, cli_single(first.name, value), pk);
    if (rc != CLI_OK || *pk != NULL || alt == NULL) return rc;
  }
  if (alt != NULL) return cli_lookup(cmd, dao, cli_single(alt, value), pk);
  return CLI_OK; /* not a uuid, and nothing else to look by: no such row */
}

int cli_resolve_pk(const cli_command *cmd, kdao_dao *dao, char **args, int n, json_t **pk) {
  *pk = NULL;
  const kdao_schema *s = kdao_dao_schema(dao);
  if (n == 0) return cli_usage_error(cmd, "missing PK");
  if (!cli_is_assignment(args[0])) {
    if (n > 1) return cli_usage_error(cmd, "unexpected argument '%s'", args[1]);
    return cli_resolve_value(cmd, dao, args[0], pk);
  }
  char *msg = NULL;
  json_t *given = cli_fields(args, n, &msg);
  if (given == NULL) {
    int rc = cli_usage_error(cmd, "%s", msg);
    free(msg);
    return rc;
  }
  const char *key;
  json_t *v;
  json_object_foreach(given, key, v) {
    if (!cli_is_pk_field(s, key)) {
      int rc =
          cli_usage_error(cmd, "'%s' is not a primary-key field of %s", key, kdao_dao_name(dao));
      json_decref(given);
      return rc;
    }
  }
  if (json_object_size(given) == kdao_schema_primary_key_count(s)) {
    *pk = given;
    return CLI_OK;
  }
  return cli_lookup(cmd, dao, given, pk);
}
