/*
 * cli.h — what the files of the `kdao` command-line tool share. Not part of libkdao.
 *
 * The contract with the user: one JSON document on stdout per successful command; errors as
 * JSON on stderr; exit status CLI_OK, CLI_DATA (the data or the database said no) or
 * CLI_USAGE (the command line itself is wrong).
 */
#ifndef KDAO_CLI_H
#define KDAO_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "kdao.h"

/* Exit statuses. */
enum { CLI_OK = 0, CLI_DATA = 1, CLI_USAGE = 2 };

/* The state of one run: global options, then what they load, lazily. */
typedef struct cli {
  const char *conf_path;   /* -c FILE */
  const char *plugins_dir; /* --plugins-dir DIR */
  kdao_config *cfg;        /* loaded by cli_config() */
  kdao_factory *factory;   /* opened by cli_factory() */
} cli;

typedef struct cli_command cli_command;

/* A command: `run` gets the arguments after the command's name. */
struct cli_command {
  const char *name;
  const char *usage;   /* "kdao find ENTITY PK" */
  const char *summary; /* one line for `kdao --help` */
  const char *help;    /* the rest of `kdao <command> --help` */
  int (*run)(cli *c, const cli_command *cmd, int argc, char **argv);
};

/* The command table (kdao.c). */
extern const cli_command cli_commands[];

/* ---- options (cli_args.c) ---- */

/* One option a command accepts. `value` is filled by cli_parse (NULL for flags: "1"). */
typedef struct cli_opt {
  const char *name; /* "--size" */
  bool has_arg;
  const char *value; /* NULL when not given */
} cli_opt;

/* Result of cli_parse besides CLI_OK and CLI_USAGE: help was asked for and printed. */
#define CLI_HELP (-1)

/*
 * Splits argv into the options in `opts` (terminated by a NULL name; `--opt VALUE` and
 * `--opt=VALUE`), the global options (-c/--config, --plugins-dir, -h/--help, stored in `c`)
 * and positional arguments, kept in order in `pos` (`*npos` of them; `pos` must hold argc
 * entries). `--` ends the options. Returns CLI_OK, CLI_HELP (help printed), or CLI_USAGE
 * (error printed).
 */
int cli_parse(cli *c, const cli_command *cmd, int argc, char **argv, cli_opt *opts, char **pos,
              int *npos);

/* Parses an integer option in [min, max] into *out; CLI_USAGE (printed) when malformed. */
int cli_opt_int(const cli_command *cmd, const cli_opt *opt, long long min, long long max,
                long long *out);

/*
 * Builds a JSON object from `field=value` (a JSON string, coerced later by the validator the
 * way Kong's Admin API coerces form input) and `field:=<json>` arguments; dotted fields build
 * nested objects (`config.key_names=apikey`). On a malformed argument returns NULL with *msg
 * set (malloc()ed).
 */
json_t *cli_fields(char **args, int n, char **msg);

/* True when `arg` has the field=value (or field:=json) form. */
bool cli_is_assignment(const char *arg);

/* ---- output (cli_out.c) ---- */

/* Prints `doc` (stolen) on stdout: 2-space indent, sorted keys. CLI_OK or CLI_DATA. */
int cli_print(json_t *doc);

/* Prints a libkdao error as JSON on stderr and frees it. Returns CLI_DATA. */
int cli_fail(kdao_error *err);

/* Prints {"message": "Not found"} on stderr. Returns CLI_DATA. */
int cli_not_found(void);

/* Prints a usage error (`kind` "usage", the message and the command's usage) on stderr. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints a one-line JSON note ({"note": ...}) on stderr: information, not an error. */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the help of `cmd` (or of the tool when NULL) on stdout. Returns CLI_OK. */
int cli_help(const cli_command *cmd);

/* ---- setup (cli_open.c) ---- */

/* Loads the configuration once: defaults < -c FILE < KDAO_* < flags; checked. */
int cli_config(cli *c);

/*
 * Opens the factory once. With `ready`, a database with pending migrations is migrated
 * when it is an embedded file (a note on stderr), refused otherwise (CLI_DATA).
 */
int cli_factory(cli *c, bool ready);

/* The DAO named `name`, or a usage error listing the entities (returns NULL). */
kdao_dao *cli_dao(cli *c, const cli_command *cmd, const char *name);

/*
 * Resolves the primary key of one row from `args` (`n` of them): a single value (an id, or
 * for apis/consumers/upstreams a name/username, as Kong's Admin API accepts) or
 * `field=value` pairs of primary-key fields. *pk is NULL (and CLI_OK returned) when no row
 * matches: the caller reports "Not found".
 */
int cli_resolve_pk(const cli_command *cmd, kdao_dao *dao, char **args, int n, json_t **pk);

/* How many leading `args` name the primary key of `dao` (for `update ENTITY PK fields`). */
int cli_pk_arg_count(kdao_dao *dao, char **args, int n);

/* ---- commands ---- */
int cli_cmd_insert(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_find(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_list(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_count(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_update(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_delete(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_migrations(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_config(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_version(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_help(cli *c, const cli_command *cmd, int argc, char **argv);
int cli_cmd_serve(cli *c, const cli_command *cmd, int argc, char **argv);

#endif
