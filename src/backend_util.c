/*
 * backend_util.c — helpers every backend shares: base64url and keyset page tokens.
 *
 * A keyset token is the primary-key values of the last row of a page, as a compact JSON
 * array, in base64url without padding. It holds values, not positions, so a page costs the
 * same wherever it is and stays valid while rows come and go. Tokens are opaque to callers
 * but not secret: they only ever carry key values the caller has already seen.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *kdao__b64_encode(const unsigned char *data, size_t len) {
  size_t out_len = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
  char *out = kdao__malloc(out_len + 1);
  if (!out) return NULL;
  char *p = out;
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
    *p++ = b64_alphabet[v >> 18 & 63];
    *p++ = b64_alphabet[v >> 12 & 63];
    *p++ = b64_alphabet[v >> 6 & 63];
    *p++ = b64_alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)data[i] << 16;
    *p++ = b64_alphabet[v >> 18 & 63];
    *p++ = b64_alphabet[v >> 12 & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
    *p++ = b64_alphabet[v >> 18 & 63];
    *p++ = b64_alphabet[v >> 12 & 63];
    *p++ = b64_alphabet[v >> 6 & 63];
  }
  *p = '\0';
  return out;
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

/*
 * Strict decoding: one spelling per byte string. Padding, the standard alphabet's '+' and
 * '/', whitespace, impossible lengths and non-zero trailing bits are all rejected, so a
 * token that decodes was produced by kdao__b64_encode.
 */
unsigned char *kdao__b64_decode(const char *text, size_t *len) {
  if (!text || !len) return NULL;
  size_t n = strlen(text);
  if (n % 4 == 1) return NULL;
  size_t out_len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
  unsigned char *out = kdao__malloc(out_len + 1); /* +1: room for a NUL, callers parse text */
  if (!out) return NULL;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64_value((unsigned char)text[i]);
    if (v < 0) goto bad;
    acc = (acc << 6 | (uint32_t)v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits & 0xff);
    }
  }
  if (acc & ((1u << bits) - 1)) goto bad;
  out[o] = '\0';
  *len = o;
  return out;
bad:
  kdao__free(out);
  return NULL;
}

char *kdao__keyset_encode(const kdao_schema *s, const json_t *row) {
  if (!s || !row || s->npk == 0) return NULL;
  json_t *keys = json_array();
  if (!keys) return NULL;
  char *token = NULL;
  for (size_t i = 0; i < s->npk; i++) {
    json_t *v = json_object_get(row, s->fields[s->pk[i]].name);
    if (!v || json_is_null(v) || json_array_append(keys, v) != 0) goto cleanup;
  }
  char *text = json_dumps(keys, JSON_COMPACT | JSON_ENCODE_ANY);
  if (text) {
    token = kdao__b64_encode((const unsigned char *)text, strlen(text));
    kdao__free(text);
  }
cleanup:
  json_decref(keys);
  return token;
}

/* Key values are scalars: anything else in a token did not come from kdao__keyset_encode. */
static bool keyset_value_ok(const json_t *v) {
  return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

json_t *kdao__keyset_decode(const char *token, size_t npk) {
  size_t len = 0;
  unsigned char *text = kdao__b64_decode(token, &len);
  if (!text) return NULL;
  json_t *keys = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);
  kdao__free(text);
  if (!json_is_array(keys) || json_array_size(keys) != npk || npk == 0) goto bad;
  for (size_t i = 0; i < npk; i++)
    if (!keyset_value_ok(json_array_get(keys, i))) goto bad;
  return keys;
bad:
  json_decref(keys);
  return NULL;
}

json_t *kdao__json_column(const kdao__field *f, const char *text, size_t len) {
  json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
  if (j == NULL) return NULL;
  bool empty = (json_is_object(j) && json_object_size(j) == 0) ||
               (json_is_array(j) && json_array_size(j) == 0);
  if (empty && f->type == KDAO_TYPE_ARRAY && !json_is_array(j)) {
    json_decref(j);
    return json_array();
  }
  if (empty && f->type == KDAO_TYPE_TABLE && !json_is_object(j)) {
    json_decref(j);
    return json_object();
  }
  return j;
}
