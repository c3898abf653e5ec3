/*
 * cli_entity.c — the data commands: insert, find, list, count, update, delete. Each is the
 * DAO method of the same name with its arguments read from the command line.
 */
#include <stdlib.h>

#include "cli.h"

/*
 * The common start of a data command: options and positional arguments (at least `min` of
 * them; the first names the entity). Nothing is opened yet, so that a usage error never
 * touches the database. Returns CLI_OK, CLI_HELP (help printed), or the status to exit with.
 */
static int cli_begin(cli *c, const cli_command *cmd, int argc, char **argv, cli_opt *opts,
                     char **pos, int *npos, int min) {
  int rc = cli_parse(c, cmd, argc, argv, opts, pos, npos);
  if (rc != CLI_OK) return rc;
  if (*npos < min) return cli_usage_error(cmd, *npos == 0 ? "missing ENTITY" : "missing PK");
  return CLI_OK;
}

/* A migrated database and the DAO of entity `name`. */
static int cli_open_dao(cli *c, const cli_command *cmd, const char *name, kdao_dao **dao) {
  int rc = cli_factory(c, true);
  if (rc != CLI_OK) return rc;
  *dao = cli_dao(c, cmd, name);
  return *dao != NULL ? CLI_OK : CLI_USAGE;
}

/* The exit status for a cli_begin result: help printed is a success. */
#define CLI_DONE(rc) ((rc) < 0 ? CLI_OK : (rc))

/* Field arguments as an object, or a usage error (returns NULL; *rc set). */
static json_t *cli_fields_or_usage(const cli_command *cmd, char **args, int n, int *rc) {
  char *msg = NULL;
  json_t *obj = cli_fields(args, n, &msg);
  if (obj == NULL) *rc = cli_usage_error(cmd, "%s", msg != NULL ? msg : "out of memory");
  free(msg);
  return obj;
}

static int cli_result(int status, json_t *row, kdao_error *err) {
  if (status != KDAO_OK) return cli_fail(err);
  return row != NULL ? cli_print(row) : cli_not_found();
}

int cli_cmd_insert(cli *c, const cli_command *cmd, int argc, char **argv) {
  cli_opt opts[] = {{"--ttl", true, NULL}, {NULL, false, NULL}};
  char *pos[argc + 1];
  int npos = 0;
  kdao_dao *dao = NULL;
  long long ttl = 0;
  int rc = cli_begin(c, cmd, argc, argv, opts, pos, &npos, 1);
  if (rc != CLI_OK) return CLI_DONE(rc);
  if (opts[0].value != NULL && (rc = cli_opt_int(cmd, &opts[0], 0, 2147483647, &ttl)) != CLI_OK)
    return rc;
  json_t *entity = cli_fields_or_usage(cmd, pos + 1, npos - 1, &rc);
  if (entity == NULL) return rc;
  if ((rc = cli_open_dao(c, cmd, pos[0], &dao)) != CLI_OK) {
    json_decref(entity);
    return rc;
  }
  json_t *row = NULL;
  kdao_error *err = NULL;
  int st = kdao_dao_insert(dao, entity, (int)ttl, 0, &row, &err);
  json_decref(entity);
  return cli_result(st, row, err);
}

/* A command of the form `<cmd> ENTITY PK`: resolve the key, run `op`, print the row. */
typedef kdao_status (*cli_pk_op)(kdao_dao *dao, const json_t *pk, json_t **row, kdao_error **err);

static int cli_by_pk(cli *c, const cli_command *cmd, int argc, char **argv, cli_pk_op op) {
  char *pos[argc + 1];
  int npos = 0;
  kdao_dao *dao = NULL;
  int rc = cli_begin(c, cmd, argc, argv, NULL, pos, &npos, 2);
  if (rc != CLI_OK) return CLI_DONE(rc);
  if ((rc = cli_open_dao(c, cmd, pos[0], &dao)) != CLI_OK) return rc;
  json_t *pk = NULL;
  if ((rc = cli_resolve_pk(cmd, dao, pos + 1, npos - 1, &pk)) != CLI_OK) return rc;
  if (pk == NULL) return cli_not_found();
  json_t *row = NULL;
  kdao_error *err = NULL;
  int st = op(dao, pk, &row, &err);
  json_decref(pk);
  return cli_result(st, row, err);
}

int cli_cmd_find(cli *c, const cli_command *cmd, int argc, char **argv) {
  return cli_by_pk(c, cmd, argc, argv, kdao_dao_find);
}

int cli_cmd_list(cli *c, const cli_command *cmd, int argc, char **argv) {
  cli_opt opts[] = {{"--size", true, NULL}, {"--offset", true, NULL}, {NULL, false, NULL}};
  char *pos[argc + 1];
  int npos = 0;
  kdao_dao *dao = NULL;
  long long size = 100;
  int rc = cli_begin(c, cmd, argc, argv, opts, pos, &npos, 1);
  if (rc != CLI_OK) return CLI_DONE(rc);
  /* The admin API's bounds: one answer for a page size, whichever front end asks. */
  if (opts[0].value != NULL && (rc = cli_opt_int(cmd, &opts[0], 1, 1000, &size)) != CLI_OK)
    return rc;
  json_t *filter = npos > 1 ? cli_fields_or_usage(cmd, pos + 1, npos - 1, &rc) : NULL;
  if (npos > 1 && filter == NULL) return rc;
  if ((rc = cli_open_dao(c, cmd, pos[0], &dao)) != CLI_OK) {
    json_decref(filter);
    return rc;
  }
  json_t *rows = NULL;
  char *next = NULL;
  kdao_error *err = NULL;
  int st = kdao_dao_find_page(dao, filter, opts[1].value, (size_t)size, &rows, &next, &err);
  json_decref(filter);
  if (st != KDAO_OK) return cli_fail(err);
  json_t *doc = json_pack("{s:o}", "data", rows);
  if (doc != NULL && next != NULL) json_object_set_new(doc, "offset", json_string(next));
  kdao_free(next);
  return cli_print(doc);
}

int cli_cmd_count(cli *c, const cli_command *cmd, int argc, char **argv) {
  char *pos[argc + 1];
  int npos = 0;
  kdao_dao *dao = NULL;
  int rc = cli_begin(c, cmd, argc, argv, NULL, pos, &npos, 1);
  if (rc != CLI_OK) return CLI_DONE(rc);
  json_t *filter = npos > 1 ? cli_fields_or_usage(cmd, pos + 1, npos - 1, &rc) : NULL;
  if (npos > 1 && filter == NULL) return rc;
  if ((rc = cli_open_dao(c, cmd, pos[0], &dao)) != CLI_OK) {
    json_decref(filter);
    return rc;
  }
  long long count = 0;
  kdao_error *err = NULL;
  int st = kdao_dao_count(dao, filter, &count, &err);
  json_decref(filter);
  if (st != KDAO_OK) return cli_fail(err);
  return cli_print(json_pack("{s:I}", "count", (json_int_t)count));
}

int cli_cmd_update(cli *c, const cli_command *cmd, int argc, char **argv) {
  cli_opt opts[] = {{"--full", false, NULL}, {"--ttl", true, NULL}, {NULL, false, NULL}};
  char *pos[argc + 1];
  int npos = 0;
  kdao_dao *dao = NULL;
  long long ttl = 0;
  int rc = cli_begin(c, cmd, argc, argv, opts, pos, &npos, 2);
  if (rc != CLI_OK) return CLI_DONE(rc);
  if (opts[1].value != NULL && (rc = cli_opt_int(cmd, &opts[1], 0, 2147483647, &ttl)) != CLI_OK)
    return rc;
  bool full = opts[0].value != NULL;
  if ((rc = cli_open_dao(c, cmd, pos[0], &dao)) != CLI_OK) return rc;
  int npk = cli_pk_arg_count(dao, pos + 1, npos - 1);
  int nfields = npos - 1 - npk;
  if (nfields == 0 && !full)
    return cli_usage_error(cmd, "nothing to update: give field=value arguments");
  json_t *values = cli_fields_or_usage(cmd, pos + 1 + npk, nfields, &rc);
  if (values == NULL) return rc;
  json_t *pk = NULL;
  if ((rc = cli_resolve_pk(cmd, dao, pos + 1, npk, &pk)) != CLI_OK || pk == NULL) {
    json_decref(values);
    return rc != CLI_OK ? rc : cli_not_found();
  }
  json_t *row = NULL;
  kdao_error *err = NULL;
  int st = kdao_dao_update(dao, values, pk, (int)ttl, full ? KDAO_DAO_FULL : 0, &row, &err);
  json_decref(values);
  json_decref(pk);
  return cli_result(st, row, err);
}

static kdao_status delete_op(kdao_dao *dao, const json_t *pk, json_t **row, kdao_error **err) {
  return kdao_dao_delete(dao, pk, 0, row, err);
}

int cli_cmd_delete(cli *c, const cli_command *cmd, int argc, char **argv) {
  return cli_by_pk(c, cmd, argc, argv, delete_op);
}
