/*
 * http_params.c — request-parameter handling of the admin API (see http_params.h).
 */
#include "http_params.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool kdao__http_decode(char *s, bool plus_is_space) {
  char *out = s;
  for (const char *in = s; *in; in++) {
    int hi, lo;
    if (*in == '+' && plus_is_space) {
      *out++ = ' ';
    } else if (*in == '%' && (hi = hex_value(in[1])) >= 0 && (lo = hex_value(in[2])) >= 0) {
      if (hi == 0 && lo == 0) return false;
      *out++ = (char)(hi << 4 | lo);
      in += 2;
    } else {
      *out++ = *in;
    }
  }
  *out = '\0';
  return true;
}

int kdao__http_form_add(json_t *flat, const char *key, const char *value, size_t len) {
  if (memchr(value, '\0', len)) return -1;
  json_t *v = json_stringn_nocheck(value, len);
  if (!v) return -1;
  json_t *prev = json_object_get(flat, key);
  if (!prev) return json_object_set_new(flat, key, v);
  if (json_is_array(prev)) return json_array_append_new(prev, v);
  json_t *arr = json_pack("[OO]", prev, v);
  json_decref(v);
  if (!arr) return -1;
  return json_object_set_new(flat, key, arr);
}

/* One "key=value" pair of an urlencoded text, `len` bytes from `pair`. */
static int add_pair(json_t *flat, const char *pair, size_t len) {
  char *copy = strndup(pair, len);
  if (!copy) return -1;
  char *eq = strchr(copy, '=');
  char *value = copy + len; /* its terminator: a key without "=" has an empty value */
  if (eq) {
    *eq = '\0';
    value = eq + 1;
  }
  int rc = -1;
  if (kdao__http_decode(copy, true) && kdao__http_decode(value, true) && copy[0])
    rc = kdao__http_form_add(flat, copy, value, strlen(value));
  else if (!copy[0])
    rc = 0; /* "=x" or "&&": nothing to name, ignored like every server does */
  free(copy);
  return rc;
}

json_t *kdao__http_parse_urlencoded(const char *text) {
  json_t *flat = json_object();
  if (!flat) return NULL;
  const char *p = text ? text : "";
  while (*p) {
    size_t len = strcspn(p, "&");
    if (len && add_pair(flat, p, len) != 0) {
      json_decref(flat);
      return NULL;
    }
    p += len;
    if (*p == '&') p++;
  }
  return flat;
}

/* Appends `value` (or each element when it is an array) to the array at obj[name]. */
static int append_to_array(json_t *obj, const char *name, json_t *value) {
  json_t *arr = json_object_get(obj, name);
  if (!json_is_array(arr)) {
    arr = json_array();
    if (!arr || json_object_set_new(obj, name, arr) != 0) return -1;
  }
  if (json_is_array(value)) return json_array_extend(arr, value);
  return json_array_append(arr, value);
}

/*
 * Stores `value` under the dotted path `key` of `obj`, creating intermediate objects. A
 * scalar standing where an object is needed gives way: the deeper key is the more specific.
 */
static int attach_dotted(json_t *obj, const char *key, json_t *value) {
  char *path = strdup(key);
  if (!path) return -1;
  int rc = -1;
  json_t *at = obj;
  char *seg = path;
  for (char *dot; (dot = strchr(seg, '.')) != NULL; seg = dot + 1) {
    *dot = '\0';
    json_t *next = json_object_get(at, seg);
    if (!json_is_object(next)) {
      next = json_object();
      if (!next || json_object_set_new(at, seg, next) != 0) goto cleanup;
    }
    at = next;
  }
  size_t n = strlen(seg);
  char *bracket = n > 0 && seg[n - 1] == ']' ? strchr(seg, '[') : NULL;
  if (bracket && bracket != seg) {
    *bracket = '\0';
    rc = append_to_array(at, seg, value);
  } else {
    rc = json_object_set(at, seg, value);
  }
cleanup:
  free(path);
  return rc;
}

json_t *kdao__http_normalize(const json_t *flat) {
  json_t *out = json_object();
  if (!out) return NULL;
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)flat, key, value) {
    json_t *v = json_is_object(value) ? kdao__http_normalize(value) : json_incref(value);
    int rc = v ? attach_dotted(out, key, v) : -1;
    json_decref(v);
    if (rc != 0) {
      json_decref(out);
      return NULL;
    }
  }
  return out;
}

int kdao__http_parse_listen(const char *listen, char **host, unsigned *port) {
  *host = NULL;
  *port = 0;
  if (!listen) return -1;
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen) return -1;
  const char *h = listen;
  size_t hlen = (size_t)(colon - listen);
  if (h[0] == '[') {
    if (hlen < 3 || h[hlen - 1] != ']') return -1;
    h++;
    hlen -= 2;
  } else if (memchr(h, ':', hlen)) {
    return -1; /* a bare IPv6 address is ambiguous: it must be bracketed */
  }
  char *end;
  errno = 0;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || errno || p > 65535 || colon[1] == '-' || colon[1] == '+')
    return -1;
  *host = strndup(h, hlen);
  if (!*host) return -1;
  *port = (unsigned)p;
  return 0;
}
