/*
 * kdao.c — the `kdao` command-line tool: global options, the command table, dispatch.
 * docs/cli.md is the user's manual; each command's --help says the same in short.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const cli_command cli_commands[] = {
    {"migrations", "kdao migrations up|list|reset [--yes]", "Run, list or reset migrations",
     "  up     run pending migrations: prints {\"ran\": {identifier: [names]}}\n"
     "  list   print executed migrations: {identifier: [names]}\n"
     "  reset  drop every table (requires --yes)\n",
     cli_cmd_migrations},
    {"insert", "kdao insert ENTITY field=value... [--ttl N]", "Insert an entity",
     "  Prints the stored entity. Values are coerced like Admin API form input\n"
     "  (hosts=a.com,b.com); field:=<json> passes raw JSON; dotted fields nest\n"
     "  (config.key_names=apikey). --ttl N expires the row after N seconds.\n",
     cli_cmd_insert},
    {"find", "kdao find ENTITY PK", "Find an entity by primary key",
     "  PK is an id (or the name/username of an api, consumer or upstream), or\n"
     "  field=value pairs of the primary key (plugins: id=... name=...).\n",
     cli_cmd_find},
    {"list", "kdao list ENTITY [field=value...] [--size N] [--offset TOKEN]",
     "List entities, one page at a time",
     "  Prints {\"data\": [...], \"offset\": TOKEN}; offset is present when there is a\n"
     "  next page: pass it back with --offset. --size is 1..1000, 100 by default.\n",
     cli_cmd_list},
    {"count", "kdao count ENTITY [field=value...]", "Count entities", "  Prints {\"count\": N}.\n",
     cli_cmd_count},
    {"update", "kdao update ENTITY PK field=value... [--full] [--ttl N]", "Update an entity",
     "  Partial by default (nested tables such as plugin config are merged); --full\n"
     "  replaces the entity. Prints the updated entity.\n",
     cli_cmd_update},
    {"delete", "kdao delete ENTITY PK", "Delete an entity (and what references it)",
     "  Prints the deleted entity.\n", cli_cmd_delete},
    {"config", "kdao config [--keys]", "Print the effective configuration",
     "  Secrets are masked. --keys prints the table of configuration keys (Markdown).\n",
     cli_cmd_config},
    {"serve", "kdao serve [--listen HOST:PORT|off] [--insecure]",
     "Serve the admin API on admin_listen",
     "  Kong 0.10's Admin API over this database, on admin_listen (--listen overrides it)\n"
     "  and over HTTPS on admin_listen_ssl. Off loopback a plain listener needs admin_auth,\n"
     "  or --insecure to serve anyone who can reach it.\n",
     cli_cmd_serve},
    {"version", "kdao version", "Print the version", "", cli_cmd_version},
    {"help", "kdao help [COMMAND]", "Print help", "", cli_cmd_help},
    {NULL, NULL, NULL, NULL, NULL},
};

static const cli_command *cli_find_command(const char *name) {
  for (const cli_command *cmd = cli_commands; cmd->name != NULL; cmd++)
    if (strcmp(cmd->name, name) == 0) return cmd;
  return NULL;
}

int cli_cmd_help(cli *c, const cli_command *cmd, int argc, char **argv) {
  char *pos[argc > 0 ? argc : 1];
  int npos = 0;
  int rc = cli_parse(c, cmd, argc, argv, NULL, pos, &npos);
  if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
  if (npos > 1) return cli_usage_error(cmd, "unexpected argument '%s'", pos[1]);
  if (npos == 0) return cli_help(NULL);
  const cli_command *topic = cli_find_command(pos[0]);
  if (topic == NULL) return cli_usage_error(NULL, "unknown command '%s'", pos[0]);
  return cli_help(topic);
}

int cli_cmd_version(cli *c, const cli_command *cmd, int argc, char **argv) {
  char *pos[argc > 0 ? argc : 1];
  int npos = 0;
  int rc = cli_parse(c, cmd, argc, argv, NULL, pos, &npos);
  if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
  if (npos > 0) return cli_usage_error(cmd, "unexpected argument '%s'", pos[0]);
  return cli_print(json_pack("{s:s, s:s}", "version", KDAO_VERSION_STRING, "kong", "0.10.4"));
}

/*
 * Global options come before the command (`kdao -c FILE insert ...`); commands accept them
 * too, wherever they stand, so both orders work.
 */
static int cli_globals(cli *c, int argc, char **argv, int *next) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
      return cli_help(NULL) == CLI_OK ? CLI_HELP : CLI_DATA;
    if (strcmp(a, "--version") == 0) {
      *next = -1;
      return CLI_OK;
    }
    const char **slot = NULL;
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
      slot = &c->conf_path;
    else if (strcmp(a, "--plugins-dir") == 0)
      slot = &c->plugins_dir;
    if (slot == NULL) {
      if (strncmp(a, "--config=", 9) == 0) {
        c->conf_path = a + 9;
        continue;
      }
      if (strncmp(a, "--plugins-dir=", 14) == 0) {
        c->plugins_dir = a + 14;
        continue;
      }
      return cli_usage_error(NULL, "unknown option '%s'", a);
    }
    if (i + 1 >= argc) return cli_usage_error(NULL, "option '%s' needs a value", a);
    *slot = argv[++i];
  }
  *next = i;
  return CLI_OK;
}

int main(int argc, char **argv) {
  cli c = {0};
  int next = 0;
  int rc = cli_globals(&c, argc, argv, &next);
  if (rc != CLI_OK) return rc == CLI_HELP ? CLI_OK : rc;
  if (next < 0) return cli_cmd_version(&c, cli_find_command("version"), 0, argv + argc);
  if (next >= argc) return cli_usage_error(NULL, "missing command");
  const cli_command *cmd = cli_find_command(argv[next]);
  if (cmd == NULL) return cli_usage_error(NULL, "unknown command '%s'", argv[next]);
  rc = cmd->run(&c, cmd, argc - next - 1, argv + next + 1);
  kdao_factory_free(c.factory);
  kdao_config_free(c.cfg);
  return rc;
}
