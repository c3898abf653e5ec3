/*
 * cli_out.c — everything the tool writes: results on stdout, errors and notes on stderr,
 * help text. Each is JSON except the help, which is for people.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* vasprintf that returns NULL on failure. */
static char *cli_vformat(const char *fmt, va_list ap) {
  char *out = NULL;
  return vasprintf(&out, fmt, ap) < 0 ? NULL : out;
}

/* Sorted keys: the same data always prints the same way, which scripts and diffs like. */
#define CLI_JSON_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS)

static int cli_emit(FILE *fp, json_t *doc, size_t flags) {
  if (doc == NULL) {
    fputs("{\"kind\": \"nomem\", \"message\": \"out of memory\"}\n", stderr);
    return CLI_DATA;
  }
  int rc = json_dumpf(doc, fp, flags) == 0 && fputc('\n', fp) != EOF ? CLI_OK : CLI_DATA;
  json_decref(doc);
  if (fflush(fp) != 0) rc = CLI_DATA;
  return rc;
}

int cli_print(json_t *doc) { return cli_emit(stdout, doc, CLI_JSON_FLAGS); }

int cli_fail(kdao_error *err) {
  json_t *doc = json_object();
  if (doc != NULL && err != NULL) {
    const json_t *fields = kdao_error_fields(err);
    json_object_set_new(doc, "kind", json_string(kdao_error_kind_name(kdao_error_kind(err))));
    json_object_set_new(doc, "message", json_string(kdao_error_message(err)));
    if (fields != NULL) json_object_set(doc, "fields", (json_t *)fields);
    if (kdao_error_db_name(err) != NULL)
      json_object_set_new(doc, "db", json_string(kdao_error_db_name(err)));
    if (kdao_error_code(err) != NULL)
      json_object_set_new(doc, "code", json_string(kdao_error_code(err)));
  } else if (doc != NULL) {
    json_object_set_new(doc, "kind", json_string("nomem"));
    json_object_set_new(doc, "message", json_string("out of memory"));
  }
  kdao_error_free(err);
  cli_emit(stderr, doc, CLI_JSON_FLAGS);
  return CLI_DATA;
}

/* Kong's Admin API body for a missing row. */
int cli_not_found(void) {
  cli_emit(stderr, json_pack("{s:s}", "message", "Not found"), CLI_JSON_FLAGS);
  return CLI_DATA;
}

/*
 * `s` with each byte that starts no valid UTF-8 sequence replaced by '?', in place: usage
 * messages quote the command line, which may hold any bytes, and a JSON string cannot (the
 * message was lost and "out of memory" printed instead).
 */
static void cli_utf8_in_place(char *s) {
  size_t len = strlen(s);
  for (size_t i = 0; i < len;) {
    unsigned char c = (unsigned char)s[i];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    json_t *one = n && i + n <= len ? json_stringn(s + i, n) : NULL;
    if (one == NULL) {
      s[i++] = '?';
      continue;
    }
    json_decref(one);
    i += n;
  }
}

int cli_usage_error(const cli_command *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = cli_vformat(fmt, ap);
  va_end(ap);
  if (msg != NULL) cli_utf8_in_place(msg);
  json_t *doc =
      json_pack("{s:s, s:s, s:s}", "kind", "usage", "message", msg != NULL ? msg : "out of memory",
                "usage", cmd != NULL ? cmd->usage : "kdao [-c FILE] COMMAND ... (kdao --help)");
  free(msg);
  cli_emit(stderr, doc, CLI_JSON_FLAGS);
  return CLI_USAGE;
}

void cli_note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = cli_vformat(fmt, ap);
  va_end(ap);
  if (msg == NULL) return;
  cli_emit(stderr, json_pack("{s:s}", "note", msg), JSON_COMPACT | JSON_SORT_KEYS);
  free(msg);
}

static const char cli_global_help[] =
    "Global options (before or after the command):\n"
    "  -c, --config FILE     kong.conf-style configuration file\n"
    "      --plugins-dir DIR directory of JSON plugin descriptions\n"
    "  -h, --help            show help\n"
    "KDAO_<KEY> environment variables override the file (kdao config --keys).\n"
    "Exit status: 0 ok, 1 data or database error, 2 usage error.\n";

int cli_help(const cli_command *cmd) {
  if (cmd != NULL) {
    printf("usage: %s\n\n%s.\n", cmd->usage, cmd->summary);
    if (cmd->help[0] != '\0') printf("\n%s", cmd->help);
    printf("\n%s", cli_global_help);
    return CLI_OK;
  }
  printf("usage: kdao [-c FILE] [--plugins-dir DIR] COMMAND [ARGS...]\n\n"
         "A command-line tool for kdao, Kong 0.10's datastore layer. Prints JSON.\n\n"
         "Commands:\n");
  for (const cli_command *c = cli_commands; c->name != NULL; c++)
    printf("  %-11s %s\n", c->name, c->summary);
  printf("\nRun 'kdao COMMAND --help' for a command's usage.\n\n%s", cli_global_help);
  return CLI_OK;
}
