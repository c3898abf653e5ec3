/*
 * conf.c — kong.conf-style configuration: one declarative table of options, and the code
 * that reads files, the environment and single settings into it.
 *
 * Every value is kept as its canonical text (booleans "on"/"off", numbers in decimal,
 * arrays "a,b") or NULL when unset, so kdao_config_get() can hand out borrowed strings and
 * the typed getters never re-validate. Conversion and checks happen once, at set time.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "conf.h"
#include "schema.h"

typedef enum conf_type {
  CONF_STRING = 0,
  CONF_NUMBER,
  CONF_BOOLEAN,
  CONF_ENUM,
  CONF_ARRAY
} conf_type;

static const char *const conf_type_names[] = {
    [CONF_STRING] = "string", [CONF_NUMBER] = "number", [CONF_BOOLEAN] = "boolean",
    [CONF_ENUM] = "enum",     [CONF_ARRAY] = "array",
};

#define CONF_SECRET 0x1u /* never printed: kdao_config_dump() masks it */

/* What Kong prints in place of a secret (conf_loader's CONF_SENSITIVE_PLACEHOLDER). */
#define CONF_MASK "******"

/* One option. `def` is already canonical text; NULL means unset by default. */
typedef struct conf_option {
  const char *key;
  conf_type type;
  const char *def;
  unsigned flags;
  const char *const *allowed; /* CONF_ENUM: NULL-terminated */
  long long min, max;         /* CONF_NUMBER: inclusive bounds */
  const char *doc;
} conf_option;

static const char *const databases[] = {"sqlite", "postgres", "cassandra", NULL};
/* ANY is left out on purpose, as in Kong: the level is used for reads and writes alike. */
static const char *const consistencies[] = {
    "ALL", "EACH_QUORUM", "QUORUM", "LOCAL_QUORUM", "ONE", "TWO", "THREE", "LOCAL_ONE", NULL};
static const char *const lb_policies[] = {"RoundRobin", "DCAwareRoundRobin", NULL};
static const char *const repl_strategies[] = {"SimpleStrategy", "NetworkTopologyStrategy", NULL};

#define STR(k, d, doc) \
  { k, CONF_STRING, d, 0, NULL, 0, 0, doc }
#define SECRET(k, doc) \
  { k, CONF_STRING, NULL, CONF_SECRET, NULL, 0, 0, doc }
#define NUM(k, d, lo, hi, doc) \
  { k, CONF_NUMBER, d, 0, NULL, lo, hi, doc }
#define BOOL(k, d, doc) \
  { k, CONF_BOOLEAN, d, 0, NULL, 0, 0, doc }
#define ENUM(k, d, vals, doc) \
  { k, CONF_ENUM, d, 0, vals, 0, 0, doc }
#define ARRAY(k, d, doc) \
  { k, CONF_ARRAY, d, 0, NULL, 0, 0, doc }

/*
 * The table. Parsing, environment overrides, kdao_config_dump(), `kdao config --keys` and
 * docs/configuration.md all come from these rows, so a key is added in one place.
 */
static const conf_option conf_options[] = {
    ENUM("database", "sqlite", databases, "Backend to use."),
    STR("sqlite_path", "kdao.db", "SQLite database file (`:memory:` for a private one)."),
    STR("plugins_dir", NULL, "Directory of JSON plugin descriptions (`*.json`) to load."),
    ARRAY("custom_plugins", NULL, "Additional plugins to enable, by name (Kong's key)."),
    STR("admin_listen", "127.0.0.1:8001", "Address and port of the admin API (`kdao serve`)."),
    NUM("admin_max_body", "1048576", 1, 1073741824, "Largest admin API request body, in bytes."),
    NUM("admin_max_connections", "256", 1, 65536, "Most concurrent admin API connections."),
    NUM("admin_max_header", "32768", 4096, 1048576,
        "Memory for one admin API connection's request line and headers, in bytes."),
    NUM("admin_timeout", "30", 1, 3600, "Idle admin API connections close after this, in seconds."),
    STR("pg_host", "127.0.0.1", "PostgreSQL host name, address or socket directory."),
    NUM("pg_port", "5432", 1, 65535, "PostgreSQL port."),
    STR("pg_user", "kong", "PostgreSQL user."),
    SECRET("pg_password", "PostgreSQL password."),
    STR("pg_database", "kong", "PostgreSQL database."),
    BOOL("pg_ssl", "off", "Connect to PostgreSQL over TLS."),
    BOOL("pg_ssl_verify", "off",
         "Verify the PostgreSQL server certificate against `lua_ssl_trusted_certificate`."),
    ARRAY("cassandra_contact_points", "127.0.0.1",
          "Cassandra nodes to contact first: addresses or host names, without port."),
    NUM("cassandra_port", "9042", 1, 65535, "Cassandra native protocol port."),
    STR("cassandra_keyspace", "kong", "Cassandra keyspace."),
    NUM("cassandra_timeout", "5000", 1, 86400000,
        "Cassandra connect and read timeout, in milliseconds."),
    BOOL("cassandra_ssl", "off", "Connect to Cassandra over TLS."),
    BOOL("cassandra_ssl_verify", "off",
         "Verify Cassandra certificates against `lua_ssl_trusted_certificate`."),
    STR("cassandra_username", "kong",
        "Cassandra user (authentication happens only when a password is set too)."),
    SECRET("cassandra_password", "Cassandra password."),
    ENUM("cassandra_consistency", "ONE", consistencies,
         "Consistency level of every read and write."),
    ENUM("cassandra_lb_policy", "RoundRobin", lb_policies,
         "Load-balancing policy across the cluster's nodes."),
    STR("cassandra_local_datacenter", NULL, "Local data center; required by `DCAwareRoundRobin`."),
    ENUM("cassandra_repl_strategy", "SimpleStrategy", repl_strategies,
         "Replication strategy used when the keyspace is created."),
    NUM("cassandra_repl_factor", "1", 1, 1000, "Replication factor of `SimpleStrategy` keyspaces."),
    ARRAY("cassandra_data_centers", "dc1:2,dc2:3",
          "`name:factor` pairs of `NetworkTopologyStrategy` keyspaces."),
    NUM("cassandra_schema_consensus_timeout", "10000", 0, 86400000,
        "Longest wait for schema agreement after DDL, in milliseconds."),
    STR("lua_ssl_trusted_certificate", NULL,
        "CA bundle (PEM) used to verify PostgreSQL and Cassandra servers."),
};

#undef STR
#undef SECRET
#undef NUM
#undef BOOL
#undef ENUM
#undef ARRAY

#define CONF_NOPTS (sizeof conf_options / sizeof conf_options[0])

struct kdao_config {
  char *values[CONF_NOPTS]; /* canonical text, NULL when unset; indexed like conf_options */
};

/* ------------------------------------------------------------------------------------------
 * Table look-ups
 * ---------------------------------------------------------------------------------------- */

static int conf_index(const char *key) {
  if (key == NULL) return -1;
  for (size_t i = 0; i < CONF_NOPTS; i++)
    if (strcmp(conf_options[i].key, key) == 0) return (int)i;
  return -1;
}

/* "KDAO_PG_PORT" for "pg_port"; `buf` is large enough for every key of the table. */
static void conf_env_name(const char *key, char *buf, size_t size) {
  size_t n = (size_t)snprintf(buf, size, "KDAO_%s", key);
  for (size_t i = 5; i < n && i < size; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
}

/* ------------------------------------------------------------------------------------------
 * Value conversion: raw text → canonical text, or a message saying why not
 * ---------------------------------------------------------------------------------------- */

/*
 * Kong's value clean-up: the first `#` not preceded by a backslash starts a comment, `\#`
 * stands for `#`, then surrounding white space goes. Returns a malloc()ed string.
 */
static char *conf_clean(const char *raw) {
  size_t len = strlen(raw);
  char *out = malloc(len + 1);
  if (out == NULL) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (raw[i] == '\\' && raw[i + 1] == '#') {
      out[n++] = '#';
      i++;
    } else if (raw[i] == '#') {
      break;
    } else {
      out[n++] = raw[i];
    }
  }
  while (n > 0 && isspace((unsigned char)out[n - 1])) n--;
  out[n] = '\0';
  size_t lead = 0;
  while (isspace((unsigned char)out[lead])) lead++;
  memmove(out, out + lead, n - lead + 1);
  return out;
}

static bool conf_parse_ll(const char *s, long long *out) {
  if (*s == '\0' || isspace((unsigned char)*s) || *s == '+') return false;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

static char *conf_number(const conf_option *o, const char *v, char **msg) {
  long long n;
  if (!conf_parse_ll(v, &n)) {
    *msg = kdao__asprintf("%s is not a number: '%s'", o->key, v);
    return NULL;
  }
  if (n < o->min || n > o->max) {
    *msg = kdao__asprintf("%s must be between %lld and %lld: '%s'", o->key, o->min, o->max, v);
    return NULL;
  }
  return kdao__asprintf("%lld", n);
}

/* Unlike Kong, which turns anything but on/true into false, a typo here is an error. */
static char *conf_boolean(const conf_option *o, const char *v, char **msg) {
  if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0) return kdao__strdup("on");
  if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0) return kdao__strdup("off");
  *msg = kdao__asprintf("%s is not a boolean: '%s'", o->key, v);
  return NULL;
}

static char *conf_enum(const conf_option *o, const char *v, char **msg) {
  size_t need = 1;
  for (const char *const *a = o->allowed; *a != NULL; a++) {
    if (strcmp(*a, v) == 0) return kdao__strdup(v);
    need += strlen(*a) + 2;
  }
  char *list = malloc(need);
  if (list == NULL) return NULL;
  list[0] = '\0';
  for (const char *const *a = o->allowed; *a != NULL; a++) {
    if (a != o->allowed) strcat(list, ", ");
    strcat(list, *a);
  }
  *msg = kdao__asprintf("%s has an invalid value: '%s' (%s)", o->key, v, list);
  free(list);
  return NULL;
}

/* Comma-separated, each element trimmed; an empty element is a mistake, not a value. */
static char *conf_array(const conf_option *o, const char *v, char **msg) {
  char *out = malloc(strlen(v) + 1);
  if (out == NULL) return NULL;
  size_t n = 0;
  const char *p = v;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *end = comma != NULL ? comma : p + strlen(p);
    while (p < end && isspace((unsigned char)*p)) p++;
    while (end > p && isspace((unsigned char)end[-1])) end--;
    if (end == p) {
      free(out);
      *msg = kdao__asprintf("%s has an empty element: '%s'", o->key, v);
      return NULL;
    }
    if (n > 0) out[n++] = ',';
    memcpy(out + n, p, (size_t)(end - p));
    n += (size_t)(end - p);
    if (comma == NULL) break;
    p = comma + 1;
  }
  out[n] = '\0';
  return out;
}

/*
 * Converts raw text for option `o`. Returns KDAO_OK with *out the canonical text (NULL for
 * "unset": empty or NONE), KDAO_ERR_CONFIG with *msg set, or KDAO_ERR_NOMEM.
 */
static int conf_convert(const conf_option *o, const char *raw, char **out, char **msg) {
  *out = NULL;
  *msg = NULL;
  if (raw == NULL) return KDAO_OK;
  char *v = conf_clean(raw);
  if (v == NULL) return KDAO_ERR_NOMEM;
  if (v[0] == '\0' || strcmp(v, "NONE") == 0) {
    free(v);
    return KDAO_OK;
  }
  /*
   * Values are shown as JSON (kdao_config_dump, `kdao config`), which cannot hold other
   * bytes: refuse them here rather than fail later as if out of memory. The message leaves
   * the value out, as it could not be printed either.
   */
  json_t *text = json_string(v);
  if (text == NULL) {
    free(v);
    *msg = kdao__asprintf("%s is not valid UTF-8", o->key);
    return *msg != NULL ? KDAO_ERR_CONFIG : KDAO_ERR_NOMEM;
  }
  json_decref(text);
  switch (o->type) {
  case CONF_STRING: *out = v; return KDAO_OK;
  case CONF_NUMBER: *out = conf_number(o, v, msg); break;
  case CONF_BOOLEAN: *out = conf_boolean(o, v, msg); break;
  case CONF_ENUM: *out = conf_enum(o, v, msg); break;
  case CONF_ARRAY: *out = conf_array(o, v, msg); break;
  }
  free(v);
  if (*out != NULL) return KDAO_OK;
  return *msg != NULL ? KDAO_ERR_CONFIG : KDAO_ERR_NOMEM;
}

/* ------------------------------------------------------------------------------------------
 * The value set
 * ---------------------------------------------------------------------------------------- */

static void conf_clear(kdao_config *cfg) {
  for (size_t i = 0; i < CONF_NOPTS; i++) {
    free(cfg->values[i]);
    cfg->values[i] = NULL;
  }
}

void kdao_config_free(kdao_config *cfg) {
  if (cfg == NULL) return;
  conf_clear(cfg);
  free(cfg);
}

/* Copies the values of `src` into the empty `dst`; false when out of memory. */
static bool conf_copy_values(kdao_config *dst, char *const *src) {
  for (size_t i = 0; i < CONF_NOPTS; i++) {
    if (src[i] == NULL) continue;
    dst->values[i] = kdao__strdup(src[i]);
    if (dst->values[i] == NULL) return false;
  }
  return true;
}

int kdao_config_new(kdao_config **out, kdao_error **err) {
  if (out == NULL)
    return kdao__fail(
        err, kdao_error_new(KDAO_ERR_MISUSE, "bad argument #1 to 'config_new' (pointer expected)"));
  *out = NULL;
  kdao_config *cfg = calloc(1, sizeof *cfg);
  if (cfg == NULL) return kdao__fail(err, NULL);
  for (size_t i = 0; i < CONF_NOPTS; i++) {
    if (conf_options[i].def == NULL) continue;
    cfg->values[i] = kdao__strdup(conf_options[i].def);
    if (cfg->values[i] == NULL) {
      kdao_config_free(cfg);
      return kdao__fail(err, NULL);
    }
  }
  *out = cfg;
  return KDAO_OK;
}

kdao_config *kdao__config_copy(const kdao_config *cfg) {
  if (cfg == NULL) return NULL;
  kdao_config *copy = calloc(1, sizeof *copy);
  if (copy == NULL) return NULL;
  if (!conf_copy_values(copy, cfg->values)) {
    kdao_config_free(copy);
    return NULL;
  }
  return copy;
}

/* Moves the values of `from` into `to` (the commit step of an all-or-nothing load). */
static void conf_commit(kdao_config *to, kdao_config *from) {
  conf_clear(to);
  memcpy(to->values, from->values, sizeof to->values);
  memset(from->values, 0, sizeof from->values);
}

/*
 * Sets option `idx` of `cfg` from raw text. On a conversion failure the error message is
 * prefixed with `where` ("kdao.conf:3", "KDAO_PG_PORT") when given.
 */
static int conf_apply(kdao_config *cfg, int idx, const char *raw, const char *where,
                      kdao_error **err) {
  char *value = NULL, *msg = NULL;
  int rc = conf_convert(&conf_options[idx], raw, &value, &msg);
  if (rc == KDAO_ERR_NOMEM) return kdao__fail(err, NULL);
  if (rc != KDAO_OK) {
    kdao_error *e = where != NULL ? kdao__error_fmt(KDAO_ERR_CONFIG, "%s: %s", where, msg)
                                  : kdao_error_new(KDAO_ERR_CONFIG, msg);
    free(msg);
    return kdao__fail(err, e);
  }
  free(cfg->values[idx]);
  cfg->values[idx] = value;
  return KDAO_OK;
}

int kdao_config_set(kdao_config *cfg, const char *key, const char *value, kdao_error **err) {
  if (cfg == NULL)
    return kdao__fail(
        err, kdao_error_new(KDAO_ERR_MISUSE, "bad argument #1 to 'config_set' (config expected)"));
  int idx = conf_index(key);
  if (idx < 0)
    return kdao__fail(err, kdao__error_fmt(KDAO_ERR_CONFIG, "unknown configuration key '%s'",
                                           key != NULL ? key : "(null)"));
  return conf_apply(cfg, idx, value, NULL, err);
}

const char *kdao_config_get(const kdao_config *cfg, const char *key) {
  int idx = conf_index(key);
  if (cfg == NULL || idx < 0) return NULL;
  return cfg->values[idx];
}

/* ------------------------------------------------------------------------------------------
 * Sources: files and the environment
 * ---------------------------------------------------------------------------------------- */

static char *conf_trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  return s;
}

/* Applies one line of a file to `cfg`. Blank lines and comment lines are fine. */
static int conf_file_line(kdao_config *cfg, char *line, const char *path, size_t lineno,
                          kdao_error **err) {
  char *text = conf_trim(line);
  if (*text == '\0' || *text == '#') return KDAO_OK;
  char *eq = strchr(text, '=');
  if (eq == NULL)
    return kdao__fail(err,
                      kdao__error_fmt(KDAO_ERR_CONFIG, "%s:%zu: expected 'key = value', got '%s'",
                                      path, lineno, text));
  *eq = '\0';
  char *key = conf_trim(text);
  int idx = conf_index(key);
  if (idx < 0)
    return kdao__fail(err,
                      kdao__error_fmt(KDAO_ERR_CONFIG, "%s:%zu: unknown configuration key '%s'",
                                      path, lineno, key));
  char *full = kdao__asprintf("%s:%zu", path, lineno);
  if (full == NULL) return kdao__fail(err, NULL);
  int rc = conf_apply(cfg, idx, eq + 1, full, err);
  free(full);
  return rc;
}

int kdao_config_load_file(kdao_config *cfg, const char *path, kdao_error **err) {
  if (cfg == NULL || path == NULL)
    return kdao__fail(
        err, kdao_error_new(KDAO_ERR_MISUSE, cfg == NULL ? "bad argument #1 to 'config_load_file' "
                                                           "(config expected)"
                                                         : "bad argument #2 to 'config_load_file' "
                                                           "(string expected, got nil)"));
  FILE *fp = fopen(path, "r");
  if (fp == NULL)
    return kdao__fail(err,
                      kdao__error_fmt(KDAO_ERR_IO, "could not read %s: %s", path, strerror(errno)));
  int rc = KDAO_OK;
  char *line = NULL;
  size_t cap = 0;
  size_t lineno = 0;
  /* Lines go into a scratch copy: a file that fails half-way must change nothing. */
  kdao_config *scratch = kdao__config_copy(cfg);
  if (scratch == NULL) {
    rc = kdao__fail(err, NULL);
    goto cleanup;
  }
  while (getline(&line, &cap, fp) != -1) {
    rc = conf_file_line(scratch, line, path, ++lineno, err);
    if (rc != KDAO_OK) goto cleanup;
  }
  if (ferror(fp)) {
    rc = kdao__fail(err,
                    kdao__error_fmt(KDAO_ERR_IO, "could not read %s: %s", path, strerror(errno)));
    goto cleanup;
  }
  conf_commit(cfg, scratch);
cleanup:
  kdao_config_free(scratch);
  free(line);
  fclose(fp);
  return rc;
}

int kdao_config_load_env(kdao_config *cfg, kdao_error **err) {
  if (cfg == NULL)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "bad argument #1 to 'config_load_env' "
                                                           "(config expected)"));
  kdao_config *scratch = kdao__config_copy(cfg);
  if (scratch == NULL) return kdao__fail(err, NULL);
  for (size_t i = 0; i < CONF_NOPTS; i++) {
    char name[64];
    conf_env_name(conf_options[i].key, name, sizeof name);
    const char *value = getenv(name);
    if (value == NULL) continue;
    int rc = conf_apply(scratch, (int)i, value, name, err);
    if (rc != KDAO_OK) {
      kdao_config_free(scratch);
      return rc;
    }
  }
  conf_commit(cfg, scratch);
  kdao_config_free(scratch);
  return KDAO_OK;
}

/* ------------------------------------------------------------------------------------------
 * Typed getters (backend.h)
 * ---------------------------------------------------------------------------------------- */

const char *kdao__config_str(const kdao_config *cfg, const char *key) {
  return kdao_config_get(cfg, key);
}

/* Values were checked at set time, so parsing cannot fail here; unset reads as 0. */
long long kdao__config_int(const kdao_config *cfg, const char *key) {
  const char *v = kdao_config_get(cfg, key);
  return v != NULL ? strtoll(v, NULL, 10) : 0;
}

bool kdao__config_bool(const kdao_config *cfg, const char *key) {
  const char *v = kdao_config_get(cfg, key);
  return v != NULL && strcmp(v, "on") == 0;
}

/* ------------------------------------------------------------------------------------------
 * Output
 * ---------------------------------------------------------------------------------------- */

/* "a,b" → ["a", "b"]. NULL when out of memory. */
static json_t *conf_split(const char *text) {
  json_t *arr = json_array();
  const char *p = text;
  while (arr != NULL) {
    const char *comma = strchr(p, ',');
    size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (json_array_append_new(arr, json_stringn(p, n)) != 0) {
      json_decref(arr);
      return NULL;
    }
    if (comma == NULL) break;
    p = comma + 1;
  }
  return arr;
}

static json_t *conf_value_json(const conf_option *o, const char *text) {
  if (text == NULL) return json_null();
  if (o->flags & CONF_SECRET) return json_string(CONF_MASK);
  switch (o->type) {
  case CONF_NUMBER: return json_integer(strtoll(text, NULL, 10));
  case CONF_BOOLEAN: return json_boolean(strcmp(text, "on") == 0);
  case CONF_ARRAY: return conf_split(text);
  case CONF_STRING:
  case CONF_ENUM: break;
  }
  return json_string(text);
}

json_t *kdao_config_dump(const kdao_config *cfg) {
  if (cfg == NULL) return NULL;
  json_t *out = json_object();
  for (size_t i = 0; out != NULL && i < CONF_NOPTS; i++) {
    if (json_object_set_new(out, conf_options[i].key,
                            conf_value_json(&conf_options[i], cfg->values[i])) != 0) {
      json_decref(out);
      out = NULL;
    }
  }
  return out;
}

static json_t *conf_describe_one(const conf_option *o) {
  char env[64];
  conf_env_name(o->key, env, sizeof env);
  json_t *row =
      json_pack("{s:s, s:s, s:o, s:b, s:s, s:s}", "key", o->key, "type", conf_type_names[o->type],
                "default", o->def != NULL ? json_string(o->def) : json_null(), "secret",
                (o->flags & CONF_SECRET) != 0, "env", env, "description", o->doc);
  if (row != NULL && o->type == CONF_NUMBER &&
      (json_object_set_new(row, "min", json_integer(o->min)) != 0 ||
       json_object_set_new(row, "max", json_integer(o->max)) != 0)) {
    json_decref(row);
    return NULL;
  }
  if (row == NULL || o->allowed == NULL) return row;
  json_t *values = json_array();
  for (const char *const *a = o->allowed; values != NULL && *a != NULL; a++)
    json_array_append_new(values, json_string(*a));
  if (values == NULL || json_array_size(values) == 0 ||
      json_object_set_new(row, "values", values) != 0) {
    json_decref(row);
    return NULL;
  }
  return row;
}

json_t *kdao__config_describe(void) {
  json_t *out = json_array();
  for (size_t i = 0; out != NULL && i < CONF_NOPTS; i++) {
    if (json_array_append_new(out, conf_describe_one(&conf_options[i])) != 0) {
      json_decref(out);
      out = NULL;
    }
  }
  return out;
}

/* ------------------------------------------------------------------------------------------
 * Rules across keys
 * ---------------------------------------------------------------------------------------- */

static bool conf_hostname_ok(const char *s) {
  if (*s == '\0' || *s == '.' || *s == '-') return false;
  for (const char *p = s; *p != '\0'; p++)
    if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_') return false;
  return true;
}

/* Kong's contact point rule: an address or a name, the port comes from cassandra_port. */
static char *conf_check_contact_point(const char *cp) {
  const char *colon = strchr(cp, ':');
  if (cp[0] == '[' || (colon != NULL && strchr(colon + 1, ':') == NULL))
    return kdao__asprintf("bad cassandra contact point '%s': port must be specified in "
                          "cassandra_port",
                          cp);
  if (colon != NULL) {
    unsigned char addr[16];
    if (inet_pton(AF_INET6, cp, addr) != 1)
      return kdao__asprintf("bad cassandra contact point '%s': invalid ipv6 address: %s", cp, cp);
    return NULL;
  }
  if (!conf_hostname_ok(cp))
    return kdao__asprintf("bad cassandra contact point '%s': invalid hostname: %s", cp, cp);
  return NULL;
}

static char *conf_check_data_center(const char *dc) {
  const char *colon = strrchr(dc, ':');
  long long n;
  if (colon == NULL || colon == dc || !conf_parse_ll(colon + 1, &n) || n < 1)
    return kdao__asprintf("cassandra_data_centers has an invalid value: '%s' (expected "
                          "<name>:<replication factor>)",
                          dc);
  return NULL;
}

/*
 * Runs `check` on each element of array option `key`. Returns KDAO_OK with *msg the first
 * complaint (or NULL), or KDAO_ERR_NOMEM.
 */
static int conf_check_each(const kdao_config *cfg, const char *key, char *(*check)(const char *),
                           char **msg) {
  *msg = NULL;
  const char *text = kdao_config_get(cfg, key);
  if (text == NULL) return KDAO_OK;
  char *copy = kdao__strdup(text);
  if (copy == NULL) return KDAO_ERR_NOMEM;
  char *save = NULL;
  for (char *e = strtok_r(copy, ",", &save); e != NULL && *msg == NULL;
       e = strtok_r(NULL, ",", &save))
    *msg = check(e);
  free(copy);
  return KDAO_OK;
}

static char *conf_check_listen(const kdao_config *cfg) {
  const char *v = kdao_config_get(cfg, "admin_listen");
  if (v == NULL) return NULL;
  const char *colon = strrchr(v, ':');
  long long port;
  if (colon == NULL || colon == v || !conf_parse_ll(colon + 1, &port) || port < 0 || port > 65535)
    return kdao__asprintf("admin_listen must be of the form 'address:port': '%s'", v);
  return NULL;
}

int kdao__config_check(const kdao_config *cfg, kdao_error **err) {
  if (cfg == NULL)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "bad argument #1 to 'config_check' "
                                                           "(config expected)"));
  const char *policy = kdao_config_get(cfg, "cassandra_lb_policy");
  if (policy != NULL && strcmp(policy, "DCAwareRoundRobin") == 0 &&
      kdao_config_get(cfg, "cassandra_local_datacenter") == NULL)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_CONFIG,
                                          "must specify 'cassandra_local_datacenter' when "
                                          "DCAwareRoundRobin policy is in use"));
  char *msg = NULL;
  if (conf_check_each(cfg, "cassandra_contact_points", conf_check_contact_point, &msg) != 0 ||
      (msg == NULL &&
       conf_check_each(cfg, "cassandra_data_centers", conf_check_data_center, &msg) != 0))
    return kdao__fail(err, NULL);
  if (msg == NULL) msg = conf_check_listen(cfg);
  if (msg == NULL) return KDAO_OK;
  kdao_error *e = kdao_error_new(KDAO_ERR_CONFIG, msg);
  free(msg);
  return kdao__fail(err, e);
}
