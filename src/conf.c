/*
 * conf.c — kong.conf-style configuration: one declarative table of options, and the code
 * that reads files, the environment and single settings into it.
 *
 * Every value is kept as its canonical text (booleans "on"/"off", numbers in decimal,
 * arrays "a,b") or NULL when unset, so kdao_config_get() can hand out borrowed strings and
 * the typed getters never re-validate. Conversion and checks happen once, at set time.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "conf.h"
#include "schema.h"
#include "error.h"
#include "util.h"

typedef kdao__conf_option conf_option;

static const char *const conf_type_names[] = {
    [KDAO__CONF_STRING] = "string",   [KDAO__CONF_NUMBER] = "number",
    [KDAO__CONF_BOOLEAN] = "boolean", [KDAO__CONF_ENUM] = "enum",
    [KDAO__CONF_ARRAY] = "array",
};

/* What Kong prints in place of a secret (conf_loader's CONF_SENSITIVE_PLACEHOLDER). */
#define CONF_MASK "******"

/*
 * The generic keys. `database` comes first and is special: its values and its default are
 * the built backends' names (kdao__backends), so it has neither here. Each backend's keys
 * follow these, in the order of the backend list. Parsing, environment overrides,
 * kdao_config_dump(), `kdao config --keys` and docs/configuration.md all come from these
 * rows, so a key is added in one place.
 */
static const conf_option conf_generic[] = {
    KDAO__OPT_ENUM("database", NULL, NULL, "Backend to use."),
    KDAO__OPT_STR("plugins_dir", NULL, "Directory of JSON plugin descriptions (`*.json`) to load."),
    KDAO__OPT_ARRAY("custom_plugins", NULL, "Additional plugins to enable, by name (Kong's key)."),
    KDAO__OPT_STR("admin_listen", "127.0.0.1:8001",
                  "Address and port of the admin API (`kdao serve`), or `off` for none "
                  "(HTTPS only)."),
    KDAO__OPT_STR("admin_listen_ssl", NULL,
                  "Address and port of the admin API over HTTPS (Kong's key); needs "
                  "`admin_ssl_cert` and `admin_ssl_cert_key`."),
    KDAO__OPT_STR("admin_ssl_cert", NULL, "Certificate (PEM file) of the HTTPS admin API."),
    KDAO__OPT_STR("admin_ssl_cert_key", NULL, "Private key (PEM file) of the HTTPS admin API."),
    KDAO__OPT_SECRET("admin_auth",
                     "Credentials every admin API request must carry: `token:<secret>` (an "
                     "`Authorization: Bearer` header) or `basic:<user>:<password>`."),
    KDAO__OPT_STR("admin_access_log", "off",
                  "Admin API access log: `off`, `stderr` or a file to append one line per "
                  "request to."),
    KDAO__OPT_NUM("admin_max_body", "1048576", 1, 1073741824,
                  "Largest admin API request body, in bytes."),
    KDAO__OPT_NUM("admin_max_connections", "256", 1, 65536,
                  "Most concurrent admin API connections."),
    KDAO__OPT_NUM("admin_max_connections_per_client", "32", 1, 65536,
                  "Most concurrent admin API connections from one client address; more are "
                  "refused at once with 503."),
    KDAO__OPT_NUM("admin_header_timeout", "5", 1, 3600,
                  "A connection's request line and headers must arrive within this, in seconds."),
    KDAO__OPT_NUM("admin_max_header", "32768", 4096, 1048576,
                  "Memory for one admin API connection's request line and headers, in bytes."),
    KDAO__OPT_NUM("admin_timeout", "30", 1, 3600,
                  "Idle admin API connections close after this, in seconds."),
    KDAO__OPT_STR("lua_ssl_trusted_certificate", NULL,
                  "CA bundle (PEM) used to verify database servers' certificates."),
};

#define CONF_NGENERIC (sizeof conf_generic / sizeof conf_generic[0])
#define CONF_DATABASE 0 /* index of `database` */

struct kdao_config {
  char **values; /* canonical text, NULL when unset; indexed like conf_opt() */
};

/* ------------------------------------------------------------------------------------------
 * The table: generic keys, then every built backend's
 * ---------------------------------------------------------------------------------------- */

static size_t conf_backend_nopts(const kdao__backend_ops *b) {
  size_t n = 0;
  while (b->options != NULL && b->options[n].key != NULL) n++;
  return n;
}

static size_t conf_nopts(void) {
  size_t n = CONF_NGENERIC;
  for (const kdao__backend_ops *const *b = kdao__backends; *b != NULL; b++)
    n += conf_backend_nopts(*b);
  return n;
}

/* Option `i` of the whole table (i < conf_nopts()). */
static const conf_option *conf_opt(size_t i) {
  if (i < CONF_NGENERIC) return &conf_generic[i];
  i -= CONF_NGENERIC;
  for (const kdao__backend_ops *const *b = kdao__backends; *b != NULL; b++) {
    size_t n = conf_backend_nopts(*b);
    if (i < n) return &(*b)->options[i];
    i -= n;
  }
  return NULL;
}

/* Allowed value `i` of an enum (NULL past the last): `database` lists the backends. */
static const char *conf_allowed(const conf_option *o, size_t i) {
  if (o == &conf_generic[CONF_DATABASE]) return kdao__backends[i] ? kdao__backends[i]->name : NULL;
  return o->allowed != NULL ? o->allowed[i] : NULL;
}

static const char *conf_default(const conf_option *o) {
  return o == &conf_generic[CONF_DATABASE] ? kdao__backends[0]->name : o->def;
}

/* ------------------------------------------------------------------------------------------
 * Table look-ups
 * ---------------------------------------------------------------------------------------- */

static int conf_index(const char *key) {
  if (key == NULL) return -1;
  for (size_t i = 0, n = conf_nopts(); i < n; i++)
    if (strcmp(conf_opt(i)->key, key) == 0) return (int)i;
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
 * stands for `#`, then surrounding white space goes. Returns a kdao__malloc()ed string.
 */
static char *conf_clean(const char *raw) {
  size_t len = strlen(raw);
  char *out = kdao__malloc(len + 1);
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

bool kdao__config_parse_int(const char *s, long long *out) {
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
  if (!kdao__config_parse_int(v, &n)) {
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
  const char *a;
  for (size_t i = 0; (a = conf_allowed(o, i)) != NULL; i++) {
    if (strcmp(a, v) == 0) return kdao__strdup(v);
    need += strlen(a) + 2;
  }
  char *list = kdao__malloc(need);
  if (list == NULL) return NULL;
  list[0] = '\0';
  for (size_t i = 0; (a = conf_allowed(o, i)) != NULL; i++) {
    if (i > 0) strcat(list, ", ");
    strcat(list, a);
  }
  *msg = kdao__asprintf("%s has an invalid value: '%s' (%s)", o->key, v, list);
  kdao__free(list);
  return NULL;
}

/* Comma-separated, each element trimmed; an empty element is a mistake, not a value. */
static char *conf_array(const conf_option *o, const char *v, char **msg) {
  char *out = kdao__malloc(strlen(v) + 1);
  if (out == NULL) return NULL;
  size_t n = 0;
  const char *p = v;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *end = comma != NULL ? comma : p + strlen(p);
    while (p < end && isspace((unsigned char)*p)) p++;
    while (end > p && isspace((unsigned char)end[-1])) end--;
    if (end == p) {
      kdao__free(out);
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
    kdao__free(v);
    return KDAO_OK;
  }
  /*
   * Values are shown as JSON (kdao_config_dump, `kdao config`), which cannot hold other
   * bytes: refuse them here rather than fail later as if out of memory. The message leaves
   * the value out, as it could not be printed either.
   */
  if (!kdao__utf8_valid(v, strlen(v))) {
    kdao__free(v);
    *msg = kdao__asprintf("%s is not valid UTF-8", o->key);
    return *msg != NULL ? KDAO_ERR_CONFIG : KDAO_ERR_NOMEM;
  }
  switch (o->type) {
  case KDAO__CONF_STRING: *out = v; return KDAO_OK;
  case KDAO__CONF_NUMBER: *out = conf_number(o, v, msg); break;
  case KDAO__CONF_BOOLEAN: *out = conf_boolean(o, v, msg); break;
  case KDAO__CONF_ENUM: *out = conf_enum(o, v, msg); break;
  case KDAO__CONF_ARRAY: *out = conf_array(o, v, msg); break;
  }
  kdao__free(v);
  if (*out != NULL) return KDAO_OK;
  return *msg != NULL ? KDAO_ERR_CONFIG : KDAO_ERR_NOMEM;
}

/* ------------------------------------------------------------------------------------------
 * The value set
 * ---------------------------------------------------------------------------------------- */

static void conf_clear(kdao_config *cfg) {
  for (size_t i = 0, n = conf_nopts(); cfg->values != NULL && i < n; i++) {
    kdao__free(cfg->values[i]);
    cfg->values[i] = NULL;
  }
}

void kdao_config_free(kdao_config *cfg) {
  if (cfg == NULL) return;
  conf_clear(cfg);
  kdao__free(cfg->values);
  kdao__free(cfg);
}

/* An empty value set (every key unset); NULL when out of memory. */
static kdao_config *conf_alloc(void) {
  kdao_config *cfg = kdao__calloc(1, sizeof *cfg);
  if (cfg == NULL) return NULL;
  if ((cfg->values = kdao__calloc(conf_nopts(), sizeof *cfg->values)) == NULL) {
    kdao__free(cfg);
    return NULL;
  }
  return cfg;
}

kdao_status kdao_config_new(kdao_config **out, kdao_error **err) {
  if (out == NULL)
    return kdao__fail(
        err, kdao_error_new(KDAO_ERR_MISUSE, "bad argument #1 to 'config_new' (pointer expected)"));
  *out = NULL;
  kdao_config *cfg = conf_alloc();
  if (cfg == NULL) return kdao__fail(err, NULL);
  for (size_t i = 0, n = conf_nopts(); i < n; i++) {
    const char *def = conf_default(conf_opt(i));
    if (def == NULL) continue;
    cfg->values[i] = kdao__strdup(def);
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
  kdao_config *copy = conf_alloc();
  for (size_t i = 0, n = conf_nopts(); copy != NULL && i < n; i++) {
    if (cfg->values[i] == NULL) continue;
    if ((copy->values[i] = kdao__strdup(cfg->values[i])) == NULL) {
      kdao_config_free(copy);
      copy = NULL;
    }
  }
  return copy;
}

/* Moves the values of `from` into `to` (the commit step of an all-or-nothing load). */
static void conf_commit(kdao_config *to, kdao_config *from) {
  conf_clear(to);
  char **values = to->values;
  to->values = from->values;
  from->values = values;
}

/*
 * Sets option `idx` of `cfg` from raw text. On a conversion failure the error message is
 * prefixed with `where` ("kdao.conf:3", "KDAO_PG_PORT") when given.
 */
static int conf_apply(kdao_config *cfg, int idx, const char *raw, const char *where,
                      kdao_error **err) {
  char *value = NULL, *msg = NULL;
  int rc = conf_convert(conf_opt((size_t)idx), raw, &value, &msg);
  if (rc == KDAO_ERR_NOMEM) return kdao__fail(err, NULL);
  if (rc != KDAO_OK) {
    kdao_error *e = where != NULL ? kdao__error_fmt(KDAO_ERR_CONFIG, "%s: %s", where, msg)
                                  : kdao_error_new(KDAO_ERR_CONFIG, msg);
    kdao__free(msg);
    return kdao__fail(err, e);
  }
  kdao__free(cfg->values[idx]);
  cfg->values[idx] = value;
  return KDAO_OK;
}

kdao_status kdao_config_set(kdao_config *cfg, const char *key, const char *value,
                            kdao_error **err) {
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
  kdao__free(full);
  return rc;
}

kdao_status kdao_config_load_file(kdao_config *cfg, const char *path, kdao_error **err) {
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
  /*
   * Read whole, up to a bound: a configuration file is small, and a device or pipe with no
   * end (kdao -c /dev/zero) must be refused, not read until memory runs out.
   */
  char *text = kdao__malloc(KDAO__CONFIG_FILE_MAX + 1);
  size_t len = text ? fread(text, 1, KDAO__CONFIG_FILE_MAX + 1, fp) : 0;
  int rc = KDAO_OK;
  kdao_config *scratch = NULL;
  if (text == NULL) {
    rc = kdao__fail(err, NULL);
  } else if (ferror(fp)) {
    rc = kdao__fail(err,
                    kdao__error_fmt(KDAO_ERR_IO, "could not read %s: %s", path, strerror(errno)));
  } else if (len > KDAO__CONFIG_FILE_MAX) {
    rc = kdao__fail(err, kdao__error_fmt(KDAO_ERR_CONFIG,
                                         "%s: larger than %u bytes: not a configuration file", path,
                                         KDAO__CONFIG_FILE_MAX));
  } else if (memchr(text, '\0', len)) {
    rc = kdao__fail(err, kdao__error_fmt(KDAO_ERR_CONFIG,
                                         "%s: holds a NUL byte: not a configuration file", path));
  } else if ((scratch = kdao__config_copy(cfg)) == NULL) {
    rc = kdao__fail(err, NULL);
  }
  /* Lines go into a scratch copy: a file that fails half-way must change nothing. */
  size_t lineno = 0;
  for (char *line = text; rc == KDAO_OK && scratch && line < text + len;) {
    char *nl = memchr(line, '\n', (size_t)(text + len - line));
    char *end = nl ? nl : text + len;
    *end = '\0';
    rc = conf_file_line(scratch, line, path, ++lineno, err);
    line = end + 1;
  }
  if (rc == KDAO_OK) conf_commit(cfg, scratch);
  kdao_config_free(scratch);
  kdao__free(text);
  fclose(fp);
  return rc;
}

kdao_status kdao_config_load_env(kdao_config *cfg, kdao_error **err) {
  if (cfg == NULL)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "bad argument #1 to 'config_load_env' "
                                                           "(config expected)"));
  kdao_config *scratch = kdao__config_copy(cfg);
  if (scratch == NULL) return kdao__fail(err, NULL);
  for (size_t i = 0, n = conf_nopts(); i < n; i++) {
    char name[64];
    conf_env_name(conf_opt(i)->key, name, sizeof name);
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
  if (o->flags & KDAO__CONF_SECRET) return json_string(CONF_MASK);
  switch (o->type) {
  case KDAO__CONF_NUMBER: return json_integer(strtoll(text, NULL, 10));
  case KDAO__CONF_BOOLEAN: return json_boolean(strcmp(text, "on") == 0);
  case KDAO__CONF_ARRAY: return conf_split(text);
  case KDAO__CONF_STRING:
  case KDAO__CONF_ENUM: break;
  }
  return json_string(text);
}

json_t *kdao_config_dump(const kdao_config *cfg) {
  if (cfg == NULL) return NULL;
  json_t *out = json_object();
  for (size_t i = 0, n = conf_nopts(); out != NULL && i < n; i++) {
    if (json_object_set_new(out, conf_opt(i)->key, conf_value_json(conf_opt(i), cfg->values[i])) !=
        0) {
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
                "default", conf_default(o) != NULL ? json_string(conf_default(o)) : json_null(),
                "secret", (o->flags & KDAO__CONF_SECRET) != 0, "env", env, "description", o->doc);
  if (row != NULL && o->type == KDAO__CONF_NUMBER &&
      (json_object_set_new(row, "min", json_integer(o->min)) != 0 ||
       json_object_set_new(row, "max", json_integer(o->max)) != 0)) {
    json_decref(row);
    return NULL;
  }
  if (row == NULL || o->type != KDAO__CONF_ENUM) return row;
  json_t *values = json_array();
  const char *a;
  for (size_t i = 0; values != NULL && (a = conf_allowed(o, i)) != NULL; i++)
    if (json_array_append_new(values, json_string(a)) != 0) {
      json_decref(values);
      values = NULL;
    }
  if (values == NULL || json_array_size(values) == 0 ||
      json_object_set_new(row, "values", values) != 0) {
    json_decref(row);
    return NULL;
  }
  return row;
}

json_t *kdao_config_describe(void) {
  json_t *out = json_array();
  for (size_t i = 0, n = conf_nopts(); out != NULL && i < n; i++) {
    if (json_array_append_new(out, conf_describe_one(conf_opt(i))) != 0) {
      json_decref(out);
      out = NULL;
    }
  }
  return out;
}

/* ------------------------------------------------------------------------------------------
 * Rules across keys
 * ---------------------------------------------------------------------------------------- */

int kdao__config_check_each(const kdao_config *cfg, const char *key, char *(*check)(const char *),
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
  kdao__free(copy);
  return KDAO_OK;
}

/* `key` reads address:port; admin_listen may also be `off` (an HTTPS-only admin API). */
static char *conf_check_listen(const kdao_config *cfg, const char *key) {
  const char *v = kdao_config_get(cfg, key);
  if (v == NULL || (strcmp(key, "admin_listen") == 0 && strcmp(v, "off") == 0)) return NULL;
  const char *colon = strrchr(v, ':');
  long long port;
  if (colon == NULL || colon == v || !kdao__config_parse_int(colon + 1, &port) || port < 0 ||
      port > 65535)
    return kdao__asprintf("%s must be of the form 'address:port': '%s'", key, v);
  return NULL;
}

/*
 * admin_auth is `token:<secret>` or `basic:<user>:<password>` (a user name cannot hold a
 * colon in Basic credentials). The message never quotes the value: it is a secret.
 */
static char *conf_check_auth(const kdao_config *cfg) {
  const char *v = kdao_config_get(cfg, "admin_auth");
  if (v == NULL) return NULL;
  const char *pass = strncmp(v, "basic:", 6) == 0 ? strchr(v + 6, ':') : NULL;
  if (strncmp(v, "token:", 6) == 0 && v[6] != '\0') return NULL;
  if (pass != NULL && pass > v + 6 && pass[1] != '\0') return NULL;
  return kdao__asprintf("admin_auth must be 'token:<secret>' or 'basic:<user>:<password>' "
                        "(the value is not shown)");
}

kdao_status kdao_config_check(const kdao_config *cfg, kdao_error **err) {
  if (cfg == NULL)
    return kdao__fail(err, kdao_error_new(KDAO_ERR_MISUSE, "bad argument #1 to 'config_check' "
                                                           "(config expected)"));
  char *msg = NULL;
  for (const kdao__backend_ops *const *b = kdao__backends; *b != NULL && msg == NULL; b++)
    if ((*b)->config_check != NULL && (*b)->config_check(cfg, &msg) != KDAO_OK)
      return kdao__fail(err, NULL);
  if (msg == NULL) msg = conf_check_listen(cfg, "admin_listen");
  if (msg == NULL) msg = conf_check_listen(cfg, "admin_listen_ssl");
  if (msg == NULL) msg = conf_check_auth(cfg);
  if (msg == NULL) return KDAO_OK;
  kdao_error *e = kdao_error_new(KDAO_ERR_CONFIG, msg);
  kdao__free(msg);
  return kdao__fail(err, e);
}
