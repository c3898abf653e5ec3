/*
 * hosts.c — Kong 0.10.4's host parsing (kong/tools/utils.lua: hostname_type, normalize_ipv4,
 * normalize_ipv6, check_hostname, normalize_ip, format_host), rewritten as small parsers.
 *
 * The rules are Kong's, quirks included, because what they accept is stored data: an
 * upstream name or an API host accepted here must be one Kong accepts, and a target must be
 * normalised to the very text Kong would store ("1.2.3.4:8000", "[0000:...:0001]:8000").
 * Lua patterns use the C locale, so every character class below is plain ASCII.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "util.h"
#include "schemas/schemas_int.h"

#define PORT_MAX 65535L

static bool h_digit(char c) { return c >= '0' && c <= '9'; }

static bool h_hex(char c) { return h_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static bool h_alnum(char c) {
  return h_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Reads a run of at least one digit ending at `end` (or the string's end when NULL) as a
 * port. Saturates instead of overflowing: anything above 65535 is rejected the same way.
 */
static bool h_port(const char *s, const char *end, long *port) {
  if (!end) end = s + strlen(s);
  if (s == end) return false;
  long v = 0;
  for (const char *p = s; p < end; p++) {
    if (!h_digit(*p)) return false;
    if (v <= PORT_MAX) v = v * 10 + (*p - '0');
  }
  if (v > PORT_MAX) return false;
  *port = v;
  return true;
}

kdao__host_type kdao__hostname_type(const char *address) {
  size_t colons = 0;
  size_t others = 0;
  bool ipv4_chars = true;
  for (const char *p = address; *p; p++) {
    if (*p == ':') {
      colons++;
      continue;
    }
    others++;
    if (!h_digit(*p) && *p != '.') ipv4_chars = false;
  }
  if (colons > 1) return KDAO__HOST_IPV6;
  if (others > 0 && ipv4_chars) return KDAO__HOST_IPV4;
  return KDAO__HOST_NAME;
}

/* One IPv4 octet: 1 to 3 digits (Lua's %d%d?%d?), value 0..255. */
static const char *h_octet(const char *p, unsigned *out) {
  unsigned v = 0;
  int n = 0;
  while (n < 3 && h_digit(p[n])) {
    v = v * 10 + (unsigned)(p[n] - '0');
    n++;
  }
  if (n == 0 || v > 255) return NULL;
  *out = v;
  return p + n;
}

/* utils.normalize_ipv4: "a.b.c.d" or "a.b.c.d:port"; the port form is chosen by any ':'. */
static int h_ipv4(const char *address, kdao__host *out) {
  unsigned o[4];
  const char *p = address;
  for (int i = 0; i < 4; i++) {
    p = h_octet(p, &o[i]);
    if (!p) return KDAO_ERR_SCHEMA;
    if (i < 3 && *p++ != '.') return KDAO_ERR_SCHEMA;
  }
  long port = -1;
  if (strchr(address, ':')) {
    if (*p != ':' || !h_port(p + 1, NULL, &port)) return KDAO_ERR_SCHEMA;
  } else if (*p != '\0') {
    return KDAO_ERR_SCHEMA;
  }
  out->host = kdao__asprintf("%u.%u.%u.%u", o[0], o[1], o[2], o[3]);
  if (!out->host) return KDAO_ERR_NOMEM;
  out->type = KDAO__HOST_IPV4;
  out->port = port;
  return KDAO_OK;
}

/*
 * Lua's "^(%b[])(.-)$" on an IPv6 address: when `address` starts with a balanced bracket
 * pair, returns the position of the matching ']' (nested brackets count), else NULL.
 */
static const char *h_bracket_end(const char *address) {
  if (address[0] != '[') return NULL;
  int depth = 0;
  for (const char *p = address; *p; p++) {
    if (*p == '[')
      depth++;
    else if (*p == ']' && --depth == 0)
      return p;
  }
  return NULL;
}

/*
 * Kong's expansion of an IPv6 text into exactly eight groups: a leading or trailing ':'
 * gets a '0', then the FIRST "::" becomes ":" plus "0:" for every group missing (counting
 * colons, as Kong does). Returns a kdao__malloc()ed text, or NULL when out of memory.
 */
static char *h_ipv6_expand(const char *check, size_t len) {
  /* Room for the two added zeros and up to eight inserted "0:" pairs. */
  char *s = kdao__malloc(len + 3 + 16 + 1);
  if (!s) return NULL;
  size_t n = 0;
  if (len > 0 && check[0] == ':') s[n++] = '0';
  memcpy(s + n, check, len);
  n += len;
  if (len > 0 && check[len - 1] == ':') s[n++] = '0';
  s[n] = '\0';

  char *dbl = strstr(s, "::");
  if (!dbl) return s;
  int colons = 0;
  for (size_t i = 0; i < n; i++) colons += s[i] == ':';
  char ins[1 + 16 + 1] = ":";
  for (int i = 0; i < 8 - colons; i++) strcat(ins, "0:");
  size_t inslen = strlen(ins);
  char *out = kdao__malloc(n - 2 + inslen + 1);
  if (!out) {
    kdao__free(s);
    return NULL;
  }
  size_t head = (size_t)(dbl - s);
  memcpy(out, s, head);
  memcpy(out + head, ins, inslen);
  strcpy(out + head + inslen, dbl + 2);
  kdao__free(s);
  return out;
}

/* Eight groups of 1 to 4 hex digits joined by ':', printed zero-padded and lower-cased. */
static int h_ipv6_groups(const char *s, char out[40]) {
  const char *p = s;
  size_t o = 0;
  for (int g = 0; g < 8; g++) {
    int n = 0;
    while (n < 4 && h_hex(p[n])) n++;
    if (n == 0) return KDAO_ERR_SCHEMA;
    for (int pad = n; pad < 4; pad++) out[o++] = '0';
    for (int i = 0; i < n; i++) {
      char c = p[i];
      out[o++] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    p += n;
    if (g < 7) {
      if (*p++ != ':') return KDAO_ERR_SCHEMA;
      out[o++] = ':';
    }
  }
  out[o] = '\0';
  return *p == '\0' ? KDAO_OK : KDAO_ERR_SCHEMA;
}

/* utils.normalize_ipv6: "ipv6", "[ipv6]" or "[ipv6]:port". */
static int h_ipv6(const char *address, kdao__host *out) {
  const char *check = address;
  size_t len = strlen(address);
  long port = -1;
  const char *close = h_bracket_end(address);
  if (close) {
    check = address + 1;
    len = (size_t)(close - check);
    const char *rest = close + 1;
    /* Kong's "^:(%d-)$" admits "[::1]:" and then fails comparing nil: invalid here. */
    if (*rest != '\0' && (*rest != ':' || !h_port(rest + 1, NULL, &port))) return KDAO_ERR_SCHEMA;
  }
  char *expanded = h_ipv6_expand(check, len);
  if (!expanded) return KDAO_ERR_NOMEM;
  char groups[40];
  int rc = h_ipv6_groups(expanded, groups);
  kdao__free(expanded);
  if (rc != KDAO_OK) return rc;
  out->host = kdao__strdup(groups);
  if (!out->host) return KDAO_ERR_NOMEM;
  out->type = KDAO__HOST_IPV6;
  out->port = port;
  return KDAO_OK;
}

/*
 * One dot-separated label of a name: not empty and not ending in '-' (a leading '-' is
 * allowed: punycode). Penlight's split keeps a trailing empty piece, so "a." is invalid.
 */
static bool h_labels_ok(const char *name, size_t len) {
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && name[i] != '.') continue;
    if (i == start || name[i - 1] == '-') return false;
    start = i + 1;
  }
  return true;
}

/* utils.check_hostname: "name" or "name:port", name of [A-Za-z0-9._-]. */
static int h_name(const char *address, kdao__host *out) {
  size_t len = strlen(address);
  long port = -1;
  size_t digits = 0;
  while (digits < len && h_digit(address[len - 1 - digits])) digits++;
  if (digits > 0 && digits < len && address[len - 1 - digits] == ':') {
    if (!h_port(address + len - digits, NULL, &port)) return KDAO_ERR_SCHEMA;
    len -= digits + 1;
  }
  if (len == 0) return KDAO_ERR_SCHEMA;
  for (size_t i = 0; i < len; i++) {
    char c = address[i];
    if (!h_alnum(c) && c != '-' && c != '.' && c != '_') return KDAO_ERR_SCHEMA;
  }
  if (!h_labels_ok(address, len)) return KDAO_ERR_SCHEMA;
  out->host = kdao__strndup(address, len);
  if (!out->host) return KDAO_ERR_NOMEM;
  out->type = KDAO__HOST_NAME;
  out->port = port;
  return KDAO_OK;
}

int kdao__normalize_ip(const char *address, kdao__host *out) {
  out->host = NULL;
  out->port = -1;
  out->type = kdao__hostname_type(address);
  switch (out->type) {
  case KDAO__HOST_IPV4: return h_ipv4(address, out);
  case KDAO__HOST_IPV6: return h_ipv6(address, out);
  case KDAO__HOST_NAME:
  default: return h_name(address, out);
  }
}

void kdao__host_clear(kdao__host *h) {
  if (!h) return;
  kdao__free(h->host);
  h->host = NULL;
}

char *kdao__format_host(const kdao__host *h, long default_port) {
  long port = h->port >= 0 ? h->port : default_port;
  const char *open = h->type == KDAO__HOST_IPV6 ? "[" : "";
  const char *close = h->type == KDAO__HOST_IPV6 ? "]" : "";
  if (port < 0) return kdao__asprintf("%s%s%s", open, h->host, close);
  return kdao__asprintf("%s%s%s:%ld", open, h->host, close, port);
}
