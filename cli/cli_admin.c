/*
 * cli_admin.c — commands about the database and the tool rather than about entities:
 * migrations, config, serve.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#if defined(KDAO_HAVE_HTTP) && defined(__has_include)
#if __has_include("serve.h")
#include "serve.h"
#define CLI_HAVE_SERVE 1
#endif
#endif

/* Parses a command that takes no positional beyond `max`; CLI_HELP passes through. */
static int cli_simple(cli *c, const cli_command *cmd, int argc, char **argv, cli_opt *opts,
                      char **pos, int *npos, int max) {
  int rc = cli_parse(c, cmd, argc, argv, opts, pos, npos);
  if (rc != CLI_OK) return rc;
  if (*npos > max) return cli_usage_error(cmd, "unexpected argument '%s'", pos[max]);
  return CLI_OK;
}

#define CLI_DONE(rc) ((rc) < 0 ? CLI_OK : (rc))

/* ---- migrations ---- */

/* Progress callback: collects {identifier: [names run]}. */
static void cli_migrated(const char *identifier, const char *name, void *ud) {
  json_t *ran = ud;
  json_t *list = json_object_get(ran, identifier);
  if (list == NULL) {
    list = json_array();
    if (list == NULL || json_object_set_new(ran, identifier, list) != 0) return;
  }
  json_array_append_new(list, json_string(name));
}

static int cli_migrations_up(cli *c) {
  json_t *ran = json_object();
  if (ran == NULL) return cli_fail(NULL);
  kdao_error *err = NULL;
  if (kdao_factory_migrate(c->factory, cli_migrated, ran, NULL, &err) != KDAO_OK) {
    /* What did run stays recorded; say so before the error. */
    if (json_object_size(ran) > 0) {
      char *text = json_dumps(ran, JSON_COMPACT | JSON_SORT_KEYS);
      cli_note("migrations run before the failure: %s", text != NULL ? text : "?");
      free(text);
    }
    json_decref(ran);
    return cli_fail(err);
  }
  return cli_print(json_pack("{s:o}", "ran", ran));
}

static int cli_migrations_list(cli *c) {
  json_t *done = NULL;
  kdao_error *err = NULL;
  if (kdao_factory_migrations(c->factory, &done, &err) != KDAO_OK) return cli_fail(err);
  return cli_print(done);
}

static int cli_migrations_reset(cli *c) {
  kdao_error *err = NULL;
  if (kdao_factory_drop_schema(c->factory, &err) != KDAO_OK) return cli_fail(err);
  return cli_print(json_pack("{s:o}", "reset", kdao_factory_infos(c->factory)));
}

int cli_cmd_migrations(cli *c, const cli_command *cmd, int argc, char **argv) {
  cli_opt opts[] = {{"--yes", false, NULL}, {NULL, false, NULL}};
  char *pos[argc + 1];
  int npos = 0;
  int rc = cli_simple(c, cmd, argc, argv, opts, pos, &npos, 1);
  if (rc != CLI_OK) return CLI_DONE(rc);
  if (npos == 0) return cli_usage_error(cmd, "missing subcommand (up, list or reset)");
  const char *sub = pos[0];
  bool up = strcmp(sub, "up") == 0, list = strcmp(sub, "list") == 0;
  bool reset = strcmp(sub, "reset") == 0;
  if (!up && !list && !reset)
    return cli_usage_error(cmd, "unknown subcommand '%s' (up, list or reset)", sub);
  if (opts[0].value != NULL && !reset)
    return cli_usage_error(cmd, "'--yes' only applies to 'reset'");
  /* A tool run from scripts never prompts: destruction must be asked for explicitly. */
  if (reset && opts[0].value == NULL)
    return cli_usage_error(cmd, "'migrations reset' drops every table: add --yes to confirm");
  if ((rc = cli_factory(c, false)) != CLI_OK) return rc;
  if (up) return cli_migrations_up(c);
  return list ? cli_migrations_list(c) : cli_migrations_reset(c);
}

/* ---- config ---- */

/* A cell of the keys table: `|` would end the cell. */
static void cli_md_cell(const char *text) {
  for (; *text != '\0'; text++) {
    if (*text == '|') fputc('\\', stdout);
    fputc(*text, stdout);
  }
}

static void cli_md_row(const json_t *row) {
  const char *type = json_string_value(json_object_get(row, "type"));
  const json_t *def = json_object_get(row, "default");
  const json_t *values = json_object_get(row, "values");
  printf("| `%s` | %s", json_string_value(json_object_get(row, "key")), type);
  if (json_is_integer(json_object_get(row, "min")))
    printf(" (%" JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT ")",
           json_integer_value(json_object_get(row, "min")),
           json_integer_value(json_object_get(row, "max")));
  if (json_is_true(json_object_get(row, "secret"))) fputs(" (secret)", stdout);
  size_t i;
  const json_t *v;
  json_array_foreach(values, i, v) printf("%s`%s`", i == 0 ? ": " : ", ", json_string_value(v));
  fputs(" | ", stdout);
  if (json_is_string(def)) {
    fputc('`', stdout);
    cli_md_cell(json_string_value(def));
    fputc('`', stdout);
  } else {
    fputs("unset", stdout);
  }
  printf(" | `%s` | ", json_string_value(json_object_get(row, "env")));
  cli_md_cell(json_string_value(json_object_get(row, "description")));
  fputs(" |\n", stdout);
}

/* The option table as Markdown: the source of docs/configuration.md's table. */
static int cli_config_keys(void) {
  json_t *rows = kdao_config_describe();
  if (rows == NULL) return cli_fail(NULL);
  puts("| key | type | default | environment | description |");
  puts("|---|---|---|---|---|");
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) cli_md_row(row);
  json_decref(rows);
  return fflush(stdout) == 0 ? CLI_OK : CLI_DATA;
}

int cli_cmd_config(cli *c, const cli_command *cmd, int argc, char **argv) {
  cli_opt opts[] = {{"--keys", false, NULL}, {NULL, false, NULL}};
  char *pos[argc + 1];
  int npos = 0;
  int rc = cli_simple(c, cmd, argc, argv, opts, pos, &npos, 0);
  if (rc != CLI_OK) return CLI_DONE(rc);
  if (opts[0].value != NULL) return cli_config_keys();
  if ((rc = cli_config(c)) != CLI_OK) return rc;
  return cli_print(kdao_config_dump(c->cfg));
}

/* ---- serve ---- */

int cli_cmd_serve(cli *c, const cli_command *cmd, int argc, char **argv) {
#ifdef CLI_HAVE_SERVE
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return cli_help(cmd);
  int rc = cli_factory(c, true);
  if (rc != CLI_OK) return rc;
  return kdao__cli_serve(c->factory, c->cfg, argc, argv);
#else
  (void)c;
  (void)argc;
  (void)argv;
  return cli_usage_error(cmd, "this kdao was built without the admin API (libmicrohttpd)");
#endif
}
