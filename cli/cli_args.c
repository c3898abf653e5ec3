/*
 * cli_args.c — command-line parsing: options, and `field=value` arguments into JSON.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A message for *msg: malloc()ed, NULL when out of memory (cli_fields then says so). */
static char *cli_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *cli_format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *out = len >= 0 ? malloc((size_t)len + 1) : NULL;
  if (out == NULL) return NULL;
  va_start(ap, fmt);
  vsnprintf(out, (size_t)len + 1, fmt, ap);
  va_end(ap);
  return out;
}

/* -c/--config and --plugins-dir: accepted by every command. */
static bool cli_global_opt(cli *c, const char *name, const char ***slot) {
  if (strcmp(name, "-c") == 0 || strcmp(name, "--config") == 0)
    *slot = &c->conf_path;
  else if (strcmp(name, "--plugins-dir") == 0)
    *slot = &c->plugins_dir;
  else
    return false;
  return true;
}

static cli_opt *cli_find_opt(cli_opt *opts, const char *name, size_t len) {
  for (cli_opt *o = opts; o != NULL && o->name != NULL; o++)
    if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
  return NULL;
}

/* Handles the option argv[*i]; advances *i past its value. */
static int cli_parse_opt(cli *c, const cli_command *cmd, int argc, char **argv, int *i,
                         cli_opt *opts) {
  const char *arg = argv[*i];
  if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
    return cli_help(cmd) == CLI_OK ? CLI_HELP : CLI_DATA;
  const char *eq = strchr(arg, '=');
  size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
  const char **slot = NULL;
  char name[64];
  if (len < sizeof name) {
    memcpy(name, arg, len);
    name[len] = '\0';
  } else {
    name[0] = '\0';
  }
  cli_opt *opt = cli_find_opt(opts, arg, len);
  bool has_arg = true;
  if (opt != NULL) {
    slot = &opt->value;
    has_arg = opt->has_arg;
  } else if (!cli_global_opt(c, name, &slot)) {
    return cli_usage_error(cmd, "unknown option '%.*s'", (int)len, arg);
  }
  if (!has_arg) {
    if (eq != NULL) return cli_usage_error(cmd, "option '%s' takes no value", name);
    *slot = "1";
    return CLI_OK;
  }
  if (eq != NULL) {
    *slot = eq + 1;
    return CLI_OK;
  }
  if (*i + 1 >= argc) return cli_usage_error(cmd, "option '%s' needs a value", name);
  *slot = argv[++*i];
  return CLI_OK;
}

int cli_parse(cli *c, const cli_command *cmd, int argc, char **argv, cli_opt *opts, char **pos,
              int *npos) {
  *npos = 0;
  bool options_done = false;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (options_done || arg[0] != '-' || arg[1] == '\0') {
      pos[(*npos)++] = argv[i];
      continue;
    }
    if (strcmp(arg, "--") == 0) {
      options_done = true;
      continue;
    }
    int rc = cli_parse_opt(c, cmd, argc, argv, &i, opts);
    if (rc != CLI_OK) return rc;
  }
  return CLI_OK;
}

int cli_opt_int(const cli_command *cmd, const cli_opt *opt, long long min, long long max,
                long long *out) {
  const char *v = opt->value;
  char *end = NULL;
  errno = 0;
  long long n = (v[0] >= '0' && v[0] <= '9') ? strtoll(v, &end, 10) : 0;
  if (end == NULL || *end != '\0' || errno != 0 || n < min || n > max)
    return cli_usage_error(cmd, "option '%s' expects an integer between %lld and %lld, got '%s'",
                           opt->name, min, max, v);
  *out = n;
  return CLI_OK;
}

bool cli_is_assignment(const char *arg) {
  const char *eq = strchr(arg, '=');
  return eq != NULL && eq != arg && !(eq == arg + 1 && arg[0] == ':');
}

/* The value of one argument: a JSON string, or for `field:=json` the parsed JSON. */
static json_t *cli_value(const char *text, bool raw, char **msg) {
  if (!raw) {
    json_t *s = json_string(text);
    if (s == NULL) *msg = cli_format("value is not valid UTF-8: '%s'", text);
    return s;
  }
  json_error_t jerr;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
  if (v == NULL) *msg = cli_format("invalid JSON '%s': %s", text, jerr.text);
  return v;
}

/*
 * Stores `value` (stolen) at the dotted `path` of `obj`, creating intermediate objects.
 * `given` records every path that received a whole value, so that a dotted path never
 * reaches into one ("config:={}" then "config.x=1" is a usage error, like the other order).
 */
static int cli_store(json_t *obj, json_t *given, char *path, json_t *value, const char *arg,
                     char **msg) {
  const char *full = path;
  char *dot;
  while ((dot = strchr(path, '.')) != NULL) {
    *dot = '\0';
    bool whole = json_object_get(given, full) != NULL;
    json_t *next = json_object_get(obj, path);
    if (next == NULL) {
      next = json_object();
      if (next == NULL || json_object_set_new(obj, path, next) != 0) goto fail;
    } else if (whole || !json_is_object(next)) {
      *msg = cli_format("'%s' conflicts with an earlier value of '%s'", arg, full);
      goto fail;
    }
    *dot = '.';
    obj = next;
    path = dot + 1;
  }
  if (json_object_get(obj, path) != NULL) {
    *msg = cli_format("'%s' sets '%s' a second time", arg, full);
    goto fail;
  }
  if (json_object_set_new(given, full, json_true()) != 0) goto fail;
  if (json_object_set_new(obj, path, value) == 0) return 0;
  value = NULL;
fail:
  json_decref(value);
  return -1;
}

/* Adds one `field=value` argument to `obj`. */
static int cli_field(json_t *obj, json_t *given, const char *arg, char **msg) {
  if (!cli_is_assignment(arg)) {
    *msg = cli_format("expected field=value, got '%s'", arg);
    return -1;
  }
  const char *eq = strchr(arg, '=');
  bool raw = eq[-1] == ':';
  size_t keylen = (size_t)(eq - arg) - (raw ? 1 : 0);
  char *key = strndup(arg, keylen);
  if (key == NULL) return -1;
  int rc = -1;
  if (key[0] == '.' || key[keylen - 1] == '.' || strstr(key, "..") != NULL) {
    *msg = cli_format("invalid field name '%s'", key);
    goto cleanup;
  }
  json_t *value = cli_value(eq + 1, raw, msg);
  if (value != NULL) rc = cli_store(obj, given, key, value, arg, msg);
cleanup:
  free(key);
  return rc;
}

json_t *cli_fields(char **args, int n, char **msg) {
  *msg = NULL;
  json_t *obj = json_object(), *given = json_object();
  for (int i = 0; obj && given && i < n; i++) {
    if (cli_field(obj, given, args[i], msg) != 0) {
      json_decref(obj);
      obj = NULL;
      if (*msg == NULL) *msg = strdup("out of memory");
    }
  }
  json_decref(given);
  return obj;
}
