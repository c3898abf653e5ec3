/*
 * http_params.c — request-parameter handling of the admin API (see http_params.h).
 */
#include "http_params.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

kdao__http_text kdao__http_check_text(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p++;
    if (c == 0) return KDAO__HTTP_TEXT_NUL;
    if (c < 0x80) continue;
    /* The sequence length and the smallest code point it may encode (no overlong forms). */
    size_t more;
    unsigned cp, min;
    if (c >= 0xC2 && c <= 0xDF)
      more = 1, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
      more = 2, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
      more = 3, cp = c & 0x07, min = 0x10000;
    else
      return KDAO__HTTP_TEXT_UTF8;
    if ((size_t)(end - p) < more) return KDAO__HTTP_TEXT_UTF8;
    for (size_t i = 0; i < more; i++, p++) {
      if ((*p & 0xC0) != 0x80) return KDAO__HTTP_TEXT_UTF8;
      cp = cp << 6 | (*p & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return KDAO__HTTP_TEXT_UTF8;
  }
  return KDAO__HTTP_TEXT_OK;
}

const char *kdao__http_text_problem(kdao__http_text t) {
  switch (t) {
  case KDAO__HTTP_TEXT_NUL: return "holds a NUL byte";
  case KDAO__HTTP_TEXT_UTF8: return "is not valid UTF-8";
  case KDAO__HTTP_TEXT_OK: break;
  }
  return "is valid";
}

kdao__http_text kdao__http_unescape(char *s, bool plus_is_space) {
  char *out = s;
  for (const char *in = s; *in; in++) {
    int hi, lo;
    if (*in == '+' && plus_is_space) {
      *out++ = ' ';
    } else if (*in == '%' && (hi = hex_value(in[1])) >= 0 && (lo = hex_value(in[2])) >= 0) {
      *out++ = (char)(hi << 4 | lo);
      in += 2;
    } else {
      *out++ = *in;
    }
  }
  kdao__http_text t = kdao__http_check_text(s, (size_t)(out - s));
  *out = '\0';
  return t;
}

bool kdao__http_decode(char *s, bool plus_is_space) {
  return kdao__http_unescape(s, plus_is_space) == KDAO__HTTP_TEXT_OK;
}

int kdao__http_form_add(json_t *flat, const char *key, const char *value, size_t len) {
  kdao__http_text t = kdao__http_check_text(key, strlen(key));
  if (t == KDAO__HTTP_TEXT_OK) t = kdao__http_check_text(value, len);
  if (t != KDAO__HTTP_TEXT_OK) return (int)t;
  json_t *v = json_stringn(value, len);
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
  /* A raw NUL would end the copy early and lose the rest of the value silently. */
  if (memchr(pair, '\0', len)) return KDAO__HTTP_TEXT_NUL;
  char *copy = strndup(pair, len);
  if (!copy) return -1;
  char *eq = strchr(copy, '=');
  char *value = copy + len; /* its terminator: a key without "=" has an empty value */
  if (eq) {
    *eq = '\0';
    value = eq + 1;
  }
  int rc = (int)kdao__http_unescape(copy, true);
  if (rc == 0) rc = (int)kdao__http_unescape(value, true);
  if (rc == 0 && copy[0]) rc = kdao__http_form_add(flat, copy, value, strlen(value));
  /* "=x" or "&&": nothing to name, ignored like every server does */
  free(copy);
  return rc;
}

json_t *kdao__http_parse_urlencoded(const char *text, size_t len, kdao__http_text *problem) {
  *problem = KDAO__HTTP_TEXT_OK;
  json_t *flat = json_object();
  if (!flat) return NULL;
  const char *p = text ? text : "", *end = text ? text + len : p;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    size_t n = amp ? (size_t)(amp - p) : (size_t)(end - p);
    int rc = n ? add_pair(flat, p, n) : 0;
    if (rc != 0) {
      if (rc > 0) *problem = (kdao__http_text)rc;
      json_decref(flat);
      return NULL;
    }
    p += n + (amp != NULL);
  }
  return flat;
}

kdao__http_text kdao__http_check_path(const char *path) {
  char *copy = strdup(path);
  if (!copy) return KDAO__HTTP_TEXT_OK; /* nothing learnt: the router meets the same path */
  kdao__http_text t = KDAO__HTTP_TEXT_OK;
  for (char *save = NULL, *s = strtok_r(copy, "/", &save); s && t == KDAO__HTTP_TEXT_OK;
       s = strtok_r(NULL, "/", &save))
    t = kdao__http_unescape(s, false);
  free(copy);
  return t;
}

/* More fields than any client sends; each costs the server memory beyond its bytes. */
#define MAX_HEADER_FIELDS 100

/* A Content-Length value: digits, optionally surrounded by blanks. */
static bool is_length(const char *v, size_t n) {
  while (n && (*v == ' ' || *v == '\t')) v++, n--;
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r')) n--;
  if (!n) return false;
  for (size_t i = 0; i < n; i++)
    if (v[i] < '0' || v[i] > '9') return false;
  return true;
}

int kdao__http_check_head(const char *buf, size_t len, size_t max_header, const char **message) {
  static const char length_name[] = "content-length:";
  size_t n = len < max_header ? len : max_header;
  size_t i = 0;
  while (i < n && (buf[i] == '\r' || buf[i] == '\n')) i++;
  unsigned lines = 0;
  for (size_t start = i; i < n; i++) {
    if (buf[i] == '\0') {
      *message = "Bad request: NUL byte in the request line or headers";
      return 400;
    }
    if (buf[i] != '\n') continue;
    size_t end = i > start && buf[i - 1] == '\r' ? i - 1 : i;
    if (end == start) return 0; /* the empty line: the head is complete */
    if (lines++ > MAX_HEADER_FIELDS) {
      *message = "Request header fields too large";
      return 431;
    }
    size_t name = sizeof length_name - 1;
    if (lines > 1 && end - start >= name && !strncasecmp(buf + start, length_name, name) &&
        !is_length(buf + start + name, end - start - name)) {
      *message = "Bad request: invalid Content-Length";
      return 400;
    }
    start = i + 1;
  }
  if (len < max_header) return -1;
  if (lines == 0) {
    *message = "URI too long";
    return 414;
  }
  *message = "Request header fields too large";
  return 431;
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
