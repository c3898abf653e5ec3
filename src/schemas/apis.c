/*
 * apis.c — the `apis` entity of Kong 0.10.4 (kong/dao/schemas/apis.lua): routing by hosts,
 * uris and methods to an upstream_url, with every per-element reason message of Kong.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "factory.h"
#include "schemas/schemas_int.h"

/* Lua patterns run in the C locale: character classes are ASCII. */
static bool api_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* strchr() finds the terminator too: a NUL byte is in no set. */
static bool api_in(char c, const char *set) { return c != '\0' && strchr(set, c) != NULL; }

/* The reason an element is refused (static text), or NULL when it is valid. */
typedef const char *(*api_element_check)(const json_t *elem, char *buf, size_t bufsize);

/* ---- name ---- */

/* Kong matches "[^\w.\-_~]" with PCRE in byte mode: any other byte (NUL too) is refused. */
static int api_check_name(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                          json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)entity, (void)new_fields, (void)ud;
  if (!json_is_string(value)) return 0;
  const char *s = json_string_value(value);
  size_t len = json_string_length(value);
  for (size_t i = 0; i < len; i++) {
    if (!api_alnum(s[i]) && !api_in(s[i], "_.-~"))
      return kdao__reject(message,
                          "name must only contain alphanumeric and '., -, _, ~' characters");
  }
  return 0;
}

/* ---- hosts ---- */

static const char *api_host_reason(const json_t *elem, char *buf, size_t bufsize) {
  (void)buf, (void)bufsize;
  if (!json_is_string(elem)) return "must be a string";
  const char *host = json_string_value(elem);
  if (kdao__is_blank(host, json_string_length(elem))) return "host is empty";
  if (!kdao__plain_string(elem)) return "Invalid hostname";

  /* Kong validates the host with each '*' replaced by a valid placeholder label. */
  size_t len = strlen(host), wildcards = 0;
  for (size_t i = 0; i < len; i++) wildcards += host[i] == '*';
  char *temp = kdao__malloc(len + 2 * wildcards + 1);
  if (!temp) return "Invalid hostname"; /* out of memory: refuse rather than accept unchecked */
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (host[i] == '*') {
      memcpy(temp + n, "abc", 3);
      n += 3;
    } else {
      temp[n++] = host[i];
    }
  }
  temp[n] = '\0';
  kdao__host parsed;
  int rc = kdao__normalize_ip(temp, &parsed);
  kdao__free(temp);
  bool has_port = rc == KDAO_OK && parsed.port >= 0;
  kdao__host_clear(&parsed);
  if (rc != KDAO_OK || has_port) return "Invalid hostname";

  if (wildcards > 1) return "Only one wildcard is allowed";
  if (wildcards == 1) {
    size_t pos = (size_t)(strchr(host, '*') - host);
    /* Only a whole first label ("*.example.com") or a whole last label ("example.*"). */
    bool valid = pos == 0 ? host[1] == '.' : (pos == len - 1 && len >= 3 && host[len - 2] == '.');
    if (!valid) return "Invalid wildcard placement";
  }
  return NULL;
}

/* ---- uris ---- */

static bool api_uri_char(char c) { return api_alnum(c) || api_in(c, ".-_~/%"); }

static bool api_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static const char *api_uri_reason(const json_t *elem, char *buf, size_t bufsize) {
  if (!json_is_string(elem)) return "must be a string";
  const char *uri = json_string_value(elem);
  if (kdao__is_blank(uri, json_string_length(elem))) return "uri is empty";
  if (uri[0] != '/') return "must be prefixed with slash";
  if (strstr(uri, "//")) return "invalid";
  size_t len = json_string_length(elem);
  for (size_t i = 0; i < len; i++) {
    if (!api_uri_char(uri[i]))
      return "must only contain alphanumeric and '., -, _, ~, /, %' characters";
  }
  /* Every '%' must open a "%XX" escape; the error quotes the '%' and up to two more. */
  for (size_t i = 0; i < len; i++) {
    if (uri[i] != '%') continue;
    if (i + 2 < len && api_hex(uri[i + 1]) && api_hex(uri[i + 2])) {
      i += 2;
      continue;
    }
    size_t snippet = len - i < 3 ? len - i : 3;
    snprintf(buf, bufsize, "must use proper encoding; '%.*s' is invalid", (int)snippet, uri + i);
    return buf;
  }
  return NULL;
}

/* A valid URI as Kong stores it: one trailing slash removed, except for "/" itself. */
static json_t *api_uri_stored(const json_t *elem) {
  const char *uri = json_string_value(elem);
  size_t len = json_string_length(elem);
  if (len > 1 && uri[len - 1] == '/') len--;
  return json_stringn(uri, len);
}

/* ---- methods ---- */

static const char *api_method_reason(const json_t *elem, char *buf, size_t bufsize) {
  (void)buf, (void)bufsize;
  if (!json_is_string(elem)) return "must be a string";
  const char *m = json_string_value(elem);
  if (kdao__is_blank(m, json_string_length(elem))) return "method is empty";
  size_t len = json_string_length(elem);
  for (size_t i = 0; i < len; i++) {
    if (m[i] < 'A' || m[i] > 'Z') return "invalid value";
  }
  return NULL;
}

/* ---- the per-element funcs ---- */

/*
 * Runs `check` on every element; the first refusal becomes
 * "<what> with value '<element>' is invalid: <reason>".
 */
static int api_check_elements(const json_t *value, const char *what, api_element_check check,
                              char **message) {
  char buf[96];
  size_t n = kdao__seq_size(value);
  for (size_t i = 0; i < n; i++) {
    const json_t *elem = kdao__seq_get(value, i);
    const char *reason = check(elem, buf, sizeof buf);
    if (!reason) continue;
    char *text = kdao__value_text(elem);
    int rc =
        kdao__reject(message, "%s with value '%s' is invalid: %s", what, text ? text : "?", reason);
    kdao__free(text);
    return rc;
  }
  return 0;
}

static int api_check_hosts(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                           json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)entity, (void)new_fields, (void)ud;
  return api_check_elements(value, "host", api_host_reason, message);
}

static int api_check_methods(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                             json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)entity, (void)new_fields, (void)ud;
  return api_check_elements(value, "method", api_method_reason, message);
}

/* Validates, then hands back the stored form of every URI (trailing slash removed). */
static int api_check_uris(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                          json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)entity, (void)ud;
  int rc = api_check_elements(value, "uri", api_uri_reason, message);
  size_t n = kdao__seq_size(value);
  if (rc != 0 || n == 0) return rc;
  json_t *uris = json_array();
  for (size_t i = 0; uris && i < n; i++) {
    if (json_array_append_new(uris, api_uri_stored(kdao__seq_get(value, i))) != 0) {
      json_decref(uris);
      uris = NULL;
    }
  }
  json_t *fields = uris ? json_object() : NULL;
  if (!fields || json_object_set_new(fields, field, uris) != 0) {
    if (!fields) json_decref(uris); /* set_new owns it otherwise, even when it fails */
    json_decref(fields);
    return kdao__reject(message, "out of memory");
  }
  *new_fields = fields;
  return 0;
}

/* ---- upstream_url, retries, timeouts ---- */

/*
 * The scheme, and whether a host follows it, as LuaSocket's url.parse finds them: the
 * fragment goes first, then the scheme "^[%w][%w+.-]*:", the authority "//" up to the next
 * '/', from which userinfo (up to the first '@') and port (after the last ':' not followed
 * by ']') are removed; what remains is the host.
 */
static bool api_url_scheme_host(const char *url, char *scheme, size_t scheme_size) {
  const char *stop = url + strcspn(url, "#");
  const char *p = url;
  while (p < stop && (api_alnum(*p) || (p > url && api_in(*p, "+-.")))) p++;
  size_t n = (size_t)(p - url);
  if (n == 0 || p == stop || *p != ':' || n >= scheme_size) return false;
  memcpy(scheme, url, n);
  scheme[n] = '\0';
  const char *auth = p + 1;
  if (stop - auth < 2 || auth[0] != '/' || auth[1] != '/') return false;
  auth += 2;
  const char *end = auth;
  while (end < stop && *end != '/') end++;
  const char *at = memchr(auth, '@', (size_t)(end - auth));
  if (at) auth = at + 1;
  const char *colon = memrchr(auth, ':', (size_t)(end - auth));
  if (colon && !memchr(colon, ']', (size_t)(end - colon))) end = colon;
  return end > auth;
}

static int api_check_upstream_url(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                                  json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)entity, (void)new_fields, (void)ud;
  char scheme[32];
  if (!json_is_string(value) ||
      !api_url_scheme_host(json_string_value(value), scheme, sizeof scheme))
    return 0;
  for (char *p = scheme; *p; p++) {
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
  }
  if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
    return kdao__reject(message, "Supported protocols are HTTP and HTTPS");
  return 0;
}

/* retries: Kong's smallint column (2 bytes). */
static int api_check_retries(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                             json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)entity, (void)new_fields, (void)ud;
  if (!json_is_number(value)) return 0;
  double d = json_number_value(value);
  if (d < 0 || floor(d) != d || d > 32767)
    return kdao__reject(message, "must be an integer between 0 and 32767");
  return 0;
}

/* Timeouts in ms: a positive 32-bit signed integer (nginx's limits). */
static int api_check_timeout(kdao_dao *dao, const char *field, json_t *value, json_t *entity,
                             json_t **new_fields, char **message, void *ud) {
  (void)dao, (void)field, (void)entity, (void)new_fields, (void)ud;
  if (!json_is_number(value)) return 0;
  double d = json_number_value(value);
  if (d < 1 || d > 2147483647.0 || floor(d) != d)
    return kdao__reject(message, "must be an integer between 1 and 2147483647");
  return 0;
}

/* ---- self_check ---- */

/* On insert, an API must be routable: at least one non-empty hosts, uris or methods. */
static kdao_error *api_self_check(kdao_dao *dao, const kdao_schema *schema, json_t *entity,
                                  kdao_mode mode, void *ud) {
  (void)dao, (void)schema, (void)ud;
  if (mode != KDAO_MODE_INSERT) return NULL;
  static const char *const routing[] = {"uris", "hosts", "methods"};
  for (size_t i = 0; i < sizeof routing / sizeof routing[0]; i++) {
    if (kdao__seq_size(json_object_get(entity, routing[i])) > 0) return NULL;
  }
  return kdao__schema_error("at least one of 'hosts', 'uris' or 'methods' must be specified");
}

static const kdao_field_def api_fields[] = {
    KDAO__FIELD_ID,
    KDAO__FIELD_CREATED_AT,
    {.name = "name",
     .type = KDAO_TYPE_STRING,
     .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_UNIQUE,
     .func = api_check_name},
    {.name = "hosts", .type = KDAO_TYPE_ARRAY, .func = api_check_hosts},
    {.name = "uris", .type = KDAO_TYPE_ARRAY, .func = api_check_uris},
    {.name = "methods", .type = KDAO_TYPE_ARRAY, .func = api_check_methods},
    {.name = "strip_uri", .type = KDAO_TYPE_BOOLEAN, .default_json = "true"},
    {.name = "https_only", .type = KDAO_TYPE_BOOLEAN, .default_json = "false"},
    {.name = "http_if_terminated", .type = KDAO_TYPE_BOOLEAN, .default_json = "true"},
    {.name = "upstream_url",
     .type = KDAO_TYPE_URL,
     .flags = KDAO_FIELD_REQUIRED,
     .func = api_check_upstream_url},
    {.name = "preserve_host", .type = KDAO_TYPE_BOOLEAN, .default_json = "false"},
    {.name = "retries", .type = KDAO_TYPE_NUMBER, .default_json = "5", .func = api_check_retries},
    {.name = "upstream_connect_timeout",
     .type = KDAO_TYPE_NUMBER,
     .default_json = "60000",
     .func = api_check_timeout},
    {.name = "upstream_send_timeout",
     .type = KDAO_TYPE_NUMBER,
     .default_json = "60000",
     .func = api_check_timeout},
    {.name = "upstream_read_timeout",
     .type = KDAO_TYPE_NUMBER,
     .default_json = "60000",
     .func = api_check_timeout},
    {.name = NULL},
};

const kdao_schema_def kdao__schema_apis = {
    .version = KDAO_DEF_VERSION,
    .name = "apis",
    .table = "apis",
    .primary_key = kdao__pk_id,
    .fields = api_fields,
    .self_check = api_self_check,
};
