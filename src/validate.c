/*
 * validate.c — Kong 0.10.4's validate_entity and is_schema_subset
 * (kong/dao/schemas_validation.lua), rule for rule and message for message.
 *
 * Lua's nil is JSON's "absent or null" here: a member holding null is treated exactly like
 * a missing one. Where Kong iterates a Lua table with pairs() (unspecified order) we use a
 * fixed order: fields sorted by name, flexible entries "" first then keys sorted.
 * docs/validation.md describes the algorithm and the few deliberate differences.
 */
#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "error.h"
#include "util.h"
#include "validate.h"

/* Kong's validation options. */
typedef struct vopts {
  kdao_mode mode;
  bool partial;      /* update and not full_update */
  const json_t *old; /* old_t, or NULL */
  kdao_dao *dao;
} vopts;

/* Result codes of the internal steps: OK, or out of memory. */
enum { V_OK = 0, V_NOMEM = -1 };

/* t[key] as Lua sees it: NULL for absent and for JSON null. */
static json_t *get(const json_t *t, const char *key) {
  json_t *v = json_object_get(t, key);
  return json_is_null(v) ? NULL : v;
}

static bool is_table(const json_t *v) { return json_is_object(v) || json_is_array(v); }

/* ---- strings ---- */

/* Lua's %s class in the C locale. */
static bool lua_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* pl.stringx.strip: the bounds of `s` without surrounding whitespace. */
static void strip_bounds(const char *s, size_t len, size_t *start, size_t *end) {
  size_t a = 0, b = len;
  while (a < b && lua_space(s[a])) a++;
  while (b > a && lua_space(s[b - 1])) b--;
  *start = a;
  *end = b;
}

static bool blank(const char *s) {
  size_t a, b;
  strip_bounds(s, strlen(s), &a, &b);
  return a == b;
}

/* The error key of `name` inside an entry: "<tk>." + name for flexible entries. */
static char *error_key(const char *prefix, const char *name) {
  return kdao__asprintf("%s%s", prefix, name);
}

static int add_error(json_t **errors, const char *prefix, const char *column, const char *msg) {
  char *key = error_key(prefix, column);
  int rc = (key && msg) ? kdao__add_error(errors, key, msg) : -1;
  kdao__free(key);
  return rc == 0 ? V_OK : V_NOMEM;
}

/* add_error with a printf-formatted message. */
__attribute__((format(printf, 4, 5))) static int
add_errorf(json_t **errors, const char *prefix, const char *column, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = kdao__vasprintf(fmt, ap);
  va_end(ap);
  int rc = add_error(errors, prefix, column, msg);
  kdao__free(msg);
  return rc;
}

/* ---- coercions ---- */

static bool scan_digits(const char **p, bool hex) {
  const char *start = *p;
  while (hex ? isxdigit((unsigned char)**p) : isdigit((unsigned char)**p)) (*p)++;
  return *p > start;
}

/* strtod in the C locale: a host program's setlocale() must not change what "1.5" means. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static double c_strtod(const char *s) {
  pthread_once(&c_locale_once, c_locale_init);
  return c_locale ? strtod_l(s, NULL, c_locale) : strtod(s, NULL);
}

/*
 * Lua's tonumber() on a string (LuaJIT's lj_strscan): optional sign, decimal with optional
 * fraction and exponent, or 0x-hex with optional fraction and binary exponent. Non-finite
 * results ("inf", "nan", overflow) are refused: JSON cannot hold them.
 */
static bool lua_tonumber(const char *s, double *out) {
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
  if (hex) p += 2;
  bool digits = scan_digits(&p, hex);
  if (*p == '.') {
    p++;
    digits |= scan_digits(&p, hex);
  }
  if (!digits) return false;
  if ((hex && (*p == 'p' || *p == 'P')) || (!hex && (*p == 'e' || *p == 'E'))) {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (!scan_digits(&p, false)) return false;
  }
  if (*p != '\0') return false;
  double d = c_strtod(s);
  if (!isfinite(d)) return false;
  *out = d;
  return true;
}

/* A Lua number as JSON: integral values as integers (Lua 5.1 has one number type). */
static json_t *number_value(double d) {
  if (d == floor(d) && fabs(d) < 9.2e18) return json_integer((json_int_t)d);
  return json_real(d);
}

json_t *kdao__number_from_string(const char *s) {
  double d;
  return lua_tonumber(s, &d) ? number_value(d) : NULL;
}

/*
 * pl.stringx.split(s, ",") with each piece stripped: every ',' separates, empty pieces are
 * kept, and (penlight's quirk) "," alone gives one empty piece, not two.
 */
static json_t *split_list(const char *s, size_t len) {
  json_t *arr = json_array();
  if (!arr) return NULL;
  if (len == 1 && s[0] == ',') {
    if (json_array_append_new(arr, json_string("")) != 0) goto oom;
    return arr;
  }
  size_t i = 0;
  for (;;) {
    size_t j = i;
    while (j < len && s[j] != ',') j++;
    size_t a, b;
    strip_bounds(s + i, j - i, &a, &b);
    if (json_array_append_new(arr, json_stringn(s + i + a, b - a)) != 0) goto oom;
    if (j >= len) break;
    i = j + 1;
  }
  return arr;
oom:
  json_decref(arr);
  return NULL;
}

/*
 * socket.url.parse (LuaSocket 2.0.2) reduced to what Kong checks: a scheme
 * ([%w][%w+-.]*:) and a non-empty host in the "//authority" part (userinfo@ and a trailing
 * :port removed). The path always defaults to "/".
 */
static bool url_valid(const char *s, size_t len) {
  if (len == 0) return false;
  const char *hash = memchr(s, '#', len);
  if (hash) len = (size_t)(hash - s);
  size_t i = 0;
  if (i >= len || !isalnum((unsigned char)s[i])) return false;
  while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
    i++;
  if (i >= len || s[i] != ':') return false;
  i++;
  if (len - i < 2 || s[i] != '/' || s[i + 1] != '/') return false;
  size_t a = i + 2, b = a;
  while (b < len && s[b] != '/') b++;
  const char *at = memchr(s + a, '@', b - a);
  if (at) a = (size_t)(at - s) + 1;
  for (size_t k = b; k > a; k--)
    if (s[k - 1] == ':') {
      b = k - 1;
      break;
    }
  return b > a;
}

bool kdao__is_array(const json_t *v) {
  if (json_is_array(v)) return true;
  if (!json_is_object(v)) return false;
  size_t n = json_object_size(v);
  char key[32];
  for (size_t i = 1; i <= n; i++) {
    snprintf(key, sizeof key, "%zu", i);
    if (!json_object_get(v, key)) return false;
  }
  return true;
}

/* An object with keys "1".."n" as the JSON array it stands for. */
static json_t *object_to_array(const json_t *obj) {
  json_t *arr = json_array();
  size_t n = json_object_size(obj);
  char key[32];
  for (size_t i = 1; arr && i <= n; i++) {
    snprintf(key, sizeof key, "%zu", i);
    if (json_array_append(arr, json_object_get(obj, key)) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  return arr;
}

/* An array standing for a Lua table: keys "1".."n" (Kong iterates tables, not arrays). */
static json_t *array_to_object(const json_t *arr) {
  json_t *obj = json_object();
  size_t i;
  json_t *el;
  char key[32];
  json_array_foreach(arr, i, el) {
    snprintf(key, sizeof key, "%zu", i + 1);
    if (!obj || json_object_set(obj, key, el) != 0) {
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

/* Replaces t[key] (set_new semantics: `v` is stolen); V_NOMEM when v is NULL. */
static int put(json_t *t, const char *key, json_t *v) {
  return (v && json_object_set_new(t, key, v) == 0) ? V_OK : V_NOMEM;
}

/*
 * Coerces a string value in place (trim, then the type's conversion) and reports whether
 * the result is of the field's type. A failed number conversion removes the value, a
 * failed boolean one stores false — both as Kong does.
 */
static int coerce_string(json_t *t, const kdao__field *f, json_t *v, bool *valid) {
  const char *s = json_string_value(v);
  size_t a, b;
  strip_bounds(s, json_string_length(v), &a, &b);
  size_t len = b - a;
  /* An untrimmed string for a string-typed field stays as it is: no copy on the hot path. */
  bool plain = f->type == KDAO_TYPE_ANY || f->type == KDAO_TYPE_ID || f->type == KDAO_TYPE_STRING;
  if (plain && a == 0 && len == json_string_length(v)) {
    *valid = true;
    return V_OK;
  }
  char *str = kdao__strndup(s + a, len);
  if (!str) return V_NOMEM;
  int rc = V_OK;
  double d;
  /* JSON strings may hold NUL bytes; no boolean or number literal does. */
  bool whole = strlen(str) == len;
  switch (f->type) {
  case KDAO_TYPE_BOOLEAN:
    for (char *p = str; *p; p++) *p = (char)tolower((unsigned char)*p);
    *valid = whole && (strcmp(str, "true") == 0 || strcmp(str, "false") == 0);
    rc = put(t, f->name, json_boolean(whole && strcmp(str, "true") == 0));
    break;
  case KDAO_TYPE_ARRAY:
    *valid = true;
    rc = put(t, f->name, len == 0 ? json_array() : split_list(str, len));
    break;
  case KDAO_TYPE_NUMBER:
  case KDAO_TYPE_TIMESTAMP:
    if (whole && lua_tonumber(str, &d)) {
      *valid = f->type == KDAO_TYPE_NUMBER || d > 0;
      rc = put(t, f->name, number_value(d));
    } else {
      *valid = false;
      json_object_del(t, f->name);
    }
    break;
  default:
    *valid = f->type != KDAO_TYPE_TABLE && (f->type != KDAO_TYPE_URL || url_valid(str, len));
    rc = put(t, f->name, json_stringn(s + a, len));
    break;
  }
  kdao__free(str);
  return rc;
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. jansson
 * checks text it parses, but a C caller can build a string with json_stringn_nocheck(), and
 * one backend refuses such bytes (a database error) where another stores them.
 */
static bool utf8_valid(const unsigned char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 0 || i + n > len) return false;
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n;
  }
  return true;
}

/* [TYPE] */
static int check_type(json_t *t, const kdao__field *f, const char *prefix, json_t **errors) {
  json_t *v = get(t, f->name);
  if (!v) return V_OK;
  bool valid = true;
  if (json_is_string(v)) {
    /* Before any conversion: a converted copy of such bytes could not even be built. */
    if (!utf8_valid((const unsigned char *)json_string_value(v), json_string_length(v)))
      return add_errorf(errors, prefix, f->name, "%s must be valid UTF-8", f->name);
    if (coerce_string(t, f, v, &valid) != V_OK) return V_NOMEM;
  } else {
    switch (f->type) {
    case KDAO_TYPE_STRING:
    case KDAO_TYPE_URL: valid = false; break;
    case KDAO_TYPE_NUMBER: valid = json_is_number(v); break;
    case KDAO_TYPE_TIMESTAMP: valid = json_is_number(v) && json_number_value(v) > 0; break;
    case KDAO_TYPE_BOOLEAN: valid = json_is_boolean(v); break;
    case KDAO_TYPE_TABLE: valid = is_table(v); break;
    case KDAO_TYPE_ARRAY:
      valid = kdao__is_array(v);
      /* kdao stores arrays as JSON arrays: {} and {"1": ..} become [...]. */
      if (valid && json_is_object(v) && put(t, f->name, object_to_array(v)) != V_OK) return V_NOMEM;
      break;
    default: break;
    }
  }
  if (!valid && f->type != KDAO_TYPE_ANY && f->type != KDAO_TYPE_ID)
    return add_errorf(errors, prefix, f->name, "%s is not %s %s", f->name,
                      f->type == KDAO_TYPE_ARRAY ? "an" : "a", kdao_type_name(f->type));
  char *msg = NULL;
  if (kdao__value_bounds(f, get(t, f->name), &msg) == 0) return V_OK;
  int rc = msg ? add_error(errors, prefix, f->name, msg) : V_NOMEM;
  kdao__free(msg);
  return rc;
}

/*
 * What every backend can store, checked once here so that a value gets the same answer on
 * all of them instead of a database error on one and a silent coercion on another (which
 * backend limits which value: docs/validation.md, "Values every backend stores").
 */
int kdao__value_bounds(const kdao__field *f, const json_t *v, char **message) {
  *message = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (f->type == KDAO_TYPE_ID) {
    if (json_is_string(v) && kdao_is_uuid(json_string_value(v))) return 0;
    *message = kdao__asprintf("%s is not a valid uuid", f->name);
    return -1;
  }
  if (f->type == KDAO_TYPE_TIMESTAMP && json_is_number(v) &&
      !(json_number_value(v) > 0 && json_number_value(v) <= KDAO__TIMESTAMP_MAX)) {
    *message = kdao__asprintf("%s is not a timestamp", f->name);
    return -1;
  }
  if (json_is_array(v) || json_is_object(v)) {
    /* Stored as JSON text (or a collection of the same size): the limit of other strings. A
     * dump that fails holds a string of invalid UTF-8 (jansson refuses to write one). */
    size_t text = json_dumpb(v, NULL, 0, JSON_COMPACT);
    if (text == 0)
      *message = kdao__asprintf("%s must be valid UTF-8", f->name);
    else if (text > KDAO__VALUE_MAX)
      *message = kdao__asprintf("%s must be at most %u bytes as JSON", f->name, KDAO__VALUE_MAX);
    return text == 0 || text > KDAO__VALUE_MAX ? -1 : 0;
  }
  if (!json_is_string(v)) return 0;
  size_t len = json_string_length(v);
  bool key = (f->flags & KDAO_FIELD_UNIQUE) || f->foreign_entity;
  size_t max = key ? KDAO__KEY_VALUE_MAX : KDAO__VALUE_MAX;
  if (len > max) {
    *message = kdao__asprintf("%s must be at most %zu bytes%s", f->name, max,
                              key ? " (an indexed value)" : "");
    return -1;
  }
  if (memchr(json_string_value(v), '\0', len)) {
    *message = kdao__asprintf("%s must not contain a NUL byte", f->name);
    return -1;
  }
  if (!utf8_valid((const unsigned char *)json_string_value(v), len)) {
    *message = kdao__asprintf("%s must be valid UTF-8", f->name);
    return -1;
  }
  return 0;
}

/* [IMMUTABLE] (only with an old row; Lua compares tables by identity, we by value). */
static int check_immutable(const vopts *o, json_t *t, const kdao__field *f, const char *prefix,
                           json_t **errors) {
  if (!(f->flags & KDAO_FIELD_IMMUTABLE) || o->mode == KDAO_MODE_INSERT || !o->old ||
      (f->flags & KDAO_FIELD_REQUIRED))
    return V_OK;
  json_t *v = get(t, f->name), *old = get(o->old, f->name);
  if (!v || !old || json_equal(v, old)) return V_OK;
  return add_errorf(errors, prefix, f->name, "%s cannot be updated", f->name);
}

static bool enum_contains(const kdao__field *f, const json_t *v) {
  if (!json_is_string(v)) return false;
  for (size_t i = 0; i < f->n_enum; i++)
    if (strcmp(f->enum_values[i], json_string_value(v)) == 0) return true;
  return false;
}

/* [ENUM] */
static int check_enum(json_t *t, const kdao__field *f, const char *prefix, json_t **errors) {
  json_t *v = get(t, f->name);
  if (!v || !f->enum_values) return V_OK;
  const json_t *wrong = NULL;
  if (f->type == KDAO_TYPE_ARRAY) {
    /* ipairs(): only a real array has elements to check. */
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v) && !wrong; i++)
      if (!enum_contains(f, json_array_get(v, i))) wrong = json_array_get(v, i);
  } else if (!enum_contains(f, v)) {
    wrong = v;
  }
  if (!wrong) return V_OK;

  size_t len = 1;
  for (size_t i = 0; i < f->n_enum; i++) len += strlen(f->enum_values[i]) + 4;
  char *allowed = kdao__malloc(len);
  char *text = kdao__value_text(wrong);
  int rc = V_NOMEM;
  if (allowed && text) {
    allowed[0] = '\0';
    for (size_t i = 0; i < f->n_enum; i++) {
      if (i > 0) strcat(allowed, "\", \"");
      strcat(allowed, f->enum_values[i]);
    }
    rc = add_errorf(errors, prefix, f->name, "\"%s\" is not allowed. Allowed values are: \"%s\"",
                    text, allowed);
  }
  kdao__free(allowed);
  kdao__free(text);
  return rc;
}

/* [REGEX] ngx.re.find(value, regex): unanchored; a match error counts as no match. */
static int check_regex(json_t *t, const kdao__field *f, const char *prefix, json_t **errors) {
  json_t *v = get(t, f->name);
  if (!f->regex || !json_is_string(v)) return V_OK;
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(f->regex, NULL);
  if (!md) return V_NOMEM;
  int m = pcre2_match(f->regex, (PCRE2_SPTR)json_string_value(v), json_string_length(v), 0, 0, md,
                      NULL);
  pcre2_match_data_free(md);
  if (m >= 0) return V_OK;
  return add_errorf(errors, prefix, f->name, "%s has an invalid value", f->name);
}

static int validate_entity(const vopts *o, const kdao_schema *s, json_t *tbl, json_t **errors,
                           kdao_error **self_err);

static bool has_default(const kdao__field *f) { return f->default_value || f->default_fn; }

/* Re-keys the nested errors under "<prefix><column>.<subkey>". */
static int merge_nested_errors(json_t **errors, const char *prefix, const char *column,
                               const json_t *sub) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)sub, k, v) {
    char *key = kdao__asprintf("%s%s.%s", prefix, column, k);
    int rc = key ? kdao__add_error_value(errors, key, json_deep_copy(v)) : -1;
    kdao__free(key);
    if (rc != 0) return V_NOMEM;
  }
  return V_OK;
}

/* [SCHEMA] nested validation, static or chosen by schema_fn. */
static int check_nested(const vopts *o, json_t *t, const kdao__field *f, const char *prefix,
                        const char *tk, json_t **errors) {
  if (!f->nested && !f->schema_fn) return V_OK;
  const kdao_schema *sub = f->nested;
  if (f->schema_fn) {
    char *msg = NULL;
    sub = f->schema_fn(o->dao, t, &msg, f->ud);
    int rc = msg ? add_error(errors, prefix, f->name, msg) : V_OK;
    kdao__free(msg);
    if (rc != V_OK) return rc;
  }
  if (!sub) return V_OK;

  if (!get(t, f->name)) {
    /* Pre-create the table when a sub-field has a default; report required sub-fields. */
    for (size_t i = 0; i < sub->nfields; i++) {
      const kdao__field *sf = &sub->fields[i];
      int rc = V_OK;
      if (has_default(sf))
        rc = put(t, f->name, json_object());
      else if (sf->flags & KDAO_FIELD_REQUIRED)
        rc = add_errorf(errors, prefix, f->name, "%s.%s is required", f->name, sf->name);
      if (rc != V_OK) return rc;
    }
  }

  json_t *v = get(t, f->name);
  if (json_is_array(v)) {
    if (put(t, f->name, array_to_object(v)) != V_OK) return V_NOMEM;
    v = get(t, f->name);
  }
  if (!json_is_object(v)) return V_OK;

  json_t *sub_errors = NULL;
  kdao_error *sub_self = NULL;
  json_incref(v); /* a callback may replace t[f] while the nested table is validated */
  int rc = validate_entity(o, sub, v, &sub_errors, &sub_self);
  json_decref(v);
  if (rc == V_OK && sub_self) {
    char *key = kdao__asprintf("%s%s%s%s", prefix, f->name, *tk ? "." : "", tk);
    rc = key && kdao__add_error(errors, key, kdao_error_message(sub_self)) == 0 ? V_OK : V_NOMEM;
    kdao__free(key);
  } else if (rc == V_OK && sub_errors) {
    rc = merge_nested_errors(errors, prefix, f->name, sub_errors);
  }
  json_decref(sub_errors);
  kdao_error_free(sub_self);
  return rc;
}

static bool missing(const json_t *v) {
  return !v || (json_is_string(v) && json_string_length(v) == 0);
}

/* [FUNC] */
static int check_func(const vopts *o, json_t *t, const kdao__field *f, const char *prefix,
                      json_t **errors) {
  /* Kong looks for an existing error under the un-prefixed column. */
  if (!f->func || (*errors && json_object_get(*errors, f->name))) return V_OK;
  json_t *v = get(t, f->name);
  json_t *new_fields = NULL;
  char *msg = NULL;
  json_incref(v);
  int r = f->func(o->dao, f->name, v, t, &new_fields, &msg, f->ud);
  json_decref(v);
  int rc = V_OK;
  if (r != 0 && msg)
    rc = add_error(errors, prefix, f->name, msg);
  else if (json_is_object(new_fields) && json_object_update(t, new_fields) != 0)
    rc = V_NOMEM;
  kdao__free(msg);
  json_decref(new_fields);
  return rc;
}

/* Step 2 for one field: every rule in Kong's order. */
static int check_field(const vopts *o, json_t *t, const kdao__field *f, const char *prefix,
                       const char *tk, json_t **errors) {
  int rc;
  if ((rc = check_type(t, f, prefix, errors)) != V_OK ||
      (rc = check_immutable(o, t, f, prefix, errors)) != V_OK ||
      (rc = check_enum(t, f, prefix, errors)) != V_OK ||
      (rc = check_regex(t, f, prefix, errors)) != V_OK ||
      (rc = check_nested(o, t, f, prefix, tk, errors)) != V_OK)
    return rc;

  bool required = f->flags & KDAO_FIELD_REQUIRED;
  if (o->mode == KDAO_MODE_FULL_UPDATE && required && missing(get(t, f->name)) &&
      (rc = add_errorf(errors, prefix, f->name, "%s is required", f->name)) != V_OK)
    return rc;
  if (o->partial && !get(t, f->name)) return V_OK;
  /* A full update was checked above: Kong's second check repeated the message. */
  if (required && o->mode != KDAO_MODE_FULL_UPDATE && !(f->flags & KDAO_FIELD_INSERT_VALUE) &&
      missing(get(t, f->name)) &&
      (rc = add_errorf(errors, prefix, f->name, "%s is required", f->name)) != V_OK)
    return rc;
  return check_func(o, t, f, prefix, errors);
}

/* Step 1: defaults (insert and full update). */
static int apply_defaults(const vopts *o, const kdao_schema *s, json_t *t) {
  if (o->partial) return V_OK;
  for (size_t i = 0; i < s->nfields; i++) {
    const kdao__field *f = &s->fields[i];
    if (get(t, f->name) || !has_default(f)) continue;
    json_t *v = f->default_fn ? f->default_fn(t, f->ud) : json_deep_copy(f->default_value);
    if (!v) {
      if (f->default_fn) continue; /* the function chose no default */
      return V_NOMEM;
    }
    if (json_object_set_new(t, f->name, v) != 0) return V_NOMEM;
  }
  return V_OK;
}

/* Step 3: keys that are not fields. */
static int check_unknown(const kdao_schema *s, json_t *t, const char *tk, const char *prefix,
                         json_t **errors) {
  bool flexible = s->flags & KDAO_SCHEMA_FLEXIBLE;
  if (flexible && blank(tk)) return V_OK;
  const char *k;
  json_t *v;
  json_object_foreach(t, k, v) {
    if (json_is_null(v) || kdao__schema_field_index(s, k) >= 0 || (flexible && strcmp(k, tk) == 0))
      continue;
    if (add_errorf(errors, prefix, k, "%s is an unknown field", k) != V_OK) return V_NOMEM;
  }
  return V_OK;
}

/* One entry of the work list: the table itself (tk "") or a flexible member (tk its key). */
static int validate_table(const vopts *o, const kdao_schema *s, json_t *t, const char *tk,
                          json_t **errors, kdao_error **self_err) {
  char *prefix = blank(tk) ? kdao__strdup("") : kdao__asprintf("%s.", tk);
  if (!prefix) return V_NOMEM;
  int rc = apply_defaults(o, s, t);
  for (size_t i = 0; rc == V_OK && i < s->nfields; i++)
    rc = check_field(o, t, &s->fields[i], prefix, tk, errors);
  if (rc == V_OK) rc = check_unknown(s, t, tk, prefix, errors);
  kdao__free(prefix);
  if (rc == V_OK && !*errors && s->self_check)
    *self_err = s->self_check(o->dao, s, t, o->mode, s->ud);
  return rc;
}

/* One member of a flexible map, captured before validation changes the map. */
typedef struct member {
  char *key;
  json_t *value; /* own reference */
} member;

static int cmp_member(const void *a, const void *b) {
  return strcmp(((const member *)a)->key, ((const member *)b)->key);
}

static void members_free(member *ms, size_t n) {
  for (size_t i = 0; i < n; i++) {
    kdao__free(ms[i].key);
    json_decref(ms[i].value);
  }
  kdao__free(ms);
}

/* The non-nil members of `tbl`, sorted by key; NULL when out of memory. */
static member *members_of(const json_t *tbl, size_t *count) {
  size_t n = json_object_size(tbl), m = 0;
  member *ms = kdao__calloc(n ? n : 1, sizeof *ms);
  if (!ms) return NULL;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)tbl, k, v) {
    if (json_is_null(v)) continue;
    if (!(ms[m].key = kdao__strdup(k))) {
      members_free(ms, m);
      return NULL;
    }
    ms[m++].value = json_incref(v);
  }
  qsort(ms, m, sizeof *ms, cmp_member);
  *count = m;
  return ms;
}

/* Flexible schemas: the map itself, then each member (keys sorted) as its own entry. */
static int validate_flexible(const vopts *o, const kdao_schema *s, json_t *tbl, json_t **errors,
                             kdao_error **self_err) {
  /* The work list is taken before validation changes the table, as Kong does. */
  size_t n = 0;
  member *ms = members_of(tbl, &n);
  if (!ms) return V_NOMEM;
  int rc = validate_table(o, s, tbl, "", errors, self_err);
  for (size_t i = 0; rc == V_OK && !*self_err && i < n; i++) {
    if (json_is_array(ms[i].value)) {
      json_t *obj = array_to_object(ms[i].value);
      if (put(tbl, ms[i].key, json_incref(obj)) != V_OK) {
        json_decref(obj);
        rc = V_NOMEM;
        break;
      }
      json_decref(ms[i].value);
      ms[i].value = obj;
    }
    if (!json_is_object(ms[i].value)) {
      rc = add_errorf(errors, "", ms[i].key, "%s is not a table", ms[i].key);
      break;
    }
    rc = validate_table(o, s, ms[i].value, ms[i].key, errors, self_err);
  }
  members_free(ms, n);
  return rc;
}

static int validate_entity(const vopts *o, const kdao_schema *s, json_t *tbl, json_t **errors,
                           kdao_error **self_err) {
  if (s->flags & KDAO_SCHEMA_FLEXIBLE) return validate_flexible(o, s, tbl, errors, self_err);
  return validate_table(o, s, tbl, "", errors, self_err);
}

/* Lua's type() of a JSON value, for argument errors (a JSON array is named "array"). */
static const char *lua_type_name(const json_t *v) {
  if (json_is_array(v)) return "array";
  if (!v || json_is_null(v)) return "nil";
  if (json_is_string(v)) return "string";
  if (json_is_number(v)) return "number";
  if (json_is_boolean(v)) return "boolean";
  return "table";
}

__attribute__((format(printf, 2, 3))) static int misuse(kdao_error **err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = kdao__vasprintf(fmt, ap);
  va_end(ap);
  kdao_error *e = msg ? kdao_error_new(KDAO_ERR_MISUSE, msg) : NULL;
  kdao__free(msg);
  return kdao__fail(err, e);
}

int kdao__validate(const kdao_schema *schema, json_t *entity, kdao_mode mode, const json_t *old,
                   kdao_dao *dao, kdao_error **err) {
  if (err) *err = NULL;
  if (!schema) return misuse(err, "bad argument #1 to 'validate' (schema expected, got nil)");
  if (!json_is_object(entity))
    return misuse(err, "bad argument #2 to 'validate' (table expected, got %s)",
                  lua_type_name(entity));
  if (mode != KDAO_MODE_INSERT && mode != KDAO_MODE_UPDATE && mode != KDAO_MODE_FULL_UPDATE)
    return misuse(err, "bad argument #3 to 'validate' (invalid mode %d)", (int)mode);
  if (old && !json_is_object(old)) old = NULL;

  vopts o = {mode, mode == KDAO_MODE_UPDATE, old, dao};
  json_t *errors = NULL;
  kdao_error *self_err = NULL;
  unsigned long failures = kdao__alloc_failures();
  int rc = validate_entity(&o, schema, entity, &errors, &self_err);
  /*
   * Callbacks cannot always say they ran out of memory (a NULL default, an unformatted
   * message, a check that refused what it could not examine): any failure voids the verdict.
   */
  if (kdao__alloc_failures() != failures) rc = V_NOMEM;
  if (rc != V_OK) {
    json_decref(errors);
    kdao_error_free(self_err);
    return kdao__fail(err, NULL);
  }
  if (self_err) {
    json_decref(errors);
    return kdao__fail(err, self_err);
  }
  if (errors) return kdao__fail(err, kdao__error_schema_new(errors));
  return KDAO_OK;
}

kdao_status kdao_validate(const kdao_schema *schema, json_t *entity, kdao_mode mode, kdao_dao *dao,
                          kdao_error **err) {
  return kdao__validate(schema, entity, mode, NULL, dao, err);
}

kdao_status kdao_validate_filter(const kdao_schema *schema, const json_t *filter,
                                 kdao_error **err) {
  if (err) *err = NULL;
  if (!schema)
    return misuse(err, "bad argument #1 to 'validate_filter' (schema expected, got nil)");
  if (!filter) return KDAO_OK;
  if (!json_is_object(filter))
    return misuse(err, "bad argument #2 to 'validate_filter' (table expected, got %s)",
                  lua_type_name(filter));
  json_t *errors = NULL;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)filter, k, v) {
    if (json_is_null(v)) continue;
    const kdao__field *f = kdao__schema_field(schema, k);
    int rc = V_OK;
    if (!f) {
      rc = kdao__add_error(&errors, k, "unknown field") == 0 ? V_OK : V_NOMEM;
    } else if (f->type == KDAO_TYPE_ID && !kdao_is_uuid(json_string_value(v))) {
      char *text = kdao__value_text(v);
      rc = text ? add_errorf(&errors, "", k, "%s is not a valid uuid", text) : V_NOMEM;
      kdao__free(text);
    }
    if (rc != V_OK) {
      json_decref(errors);
      return kdao__fail(err, NULL);
    }
  }
  return errors ? kdao__fail(err, kdao__error_schema_new(errors)) : KDAO_OK;
}
