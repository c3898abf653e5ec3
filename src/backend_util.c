/*
 * backend_util.c — helpers every backend shares: base64url, keyset positions, and the one
 * page token format of every backend.
 *
 * A keyset position is the primary-key values of the last row of a page, as a compact JSON
 * array. It holds values, not positions, so a page costs the same wherever it is and stays
 * valid while rows come and go.
 *
 * A page token wraps a backend's position (a keyset position, or a server's own paging state) with a
 * MAC under a per-database key, over the table and the filter it was made for, so a token is
 * only ever accepted where kdao handed it out: a changed, cut or extended token, or one from
 * another table or another filter, is refused the same way on every backend. Tokens are not
 * secret — the position is readable — only unforgeable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

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
  char *text = NULL;
  for (size_t i = 0; i < s->npk; i++) {
    json_t *v = json_object_get(row, s->fields[s->pk[i]].name);
    if (!v || json_is_null(v) || json_array_append(keys, v) != 0) goto cleanup;
  }
  text = json_dumps(keys, JSON_COMPACT | JSON_ENCODE_ANY);
cleanup:
  json_decref(keys);
  return text;
}

/* Key values are scalars: anything else in a position did not come from kdao__keyset_encode. */
static bool keyset_value_ok(const json_t *v) {
  return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

json_t *kdao__keyset_decode(const unsigned char *pos, size_t len, size_t npk) {
  if (!pos) return NULL;
  json_t *keys = json_loadb((const char *)pos, len, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_array(keys) || json_array_size(keys) != npk || npk == 0) goto bad;
  for (size_t i = 0; i < npk; i++)
    if (!keyset_value_ok(json_array_get(keys, i))) goto bad;
  return keys;
bad:
  json_decref(keys);
  return NULL;
}

kdao_error *kdao__invalid_offset(void) {
  json_t *fields = json_pack("{s:s}", "offset", "invalid offset");
  return fields ? kdao__error_schema_new(fields) : kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
}

/* ---- page tokens: version byte, position, MAC ---- */

#define TOKEN_VERSION 0x01
#define TOKEN_MAC_LEN 16 /* HMAC-SHA256 truncated: 128 bits leave nothing to guess */

char *kdao__page_key_new(void) {
  unsigned char key[KDAO__PAGE_KEY_LEN];
  if (RAND_bytes(key, sizeof key) != 1) return NULL;
  char *text = kdao__b64_encode(key, sizeof key);
  OPENSSL_cleanse(key, sizeof key);
  return text;
}

static void put_be32(unsigned char *p, size_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/*
 * The MAC of a token: over a domain label, the version, then table, filter and position,
 * each length-prefixed so that no two (table, filter, position) triples share an input.
 */
static bool token_mac(const unsigned char key[KDAO__PAGE_KEY_LEN], const char *table,
                      const char *filter, const unsigned char *pos, size_t pos_len,
                      unsigned char mac[TOKEN_MAC_LEN]) {
  static const char label[] = "kdao page token";
  size_t tl = strlen(table), fl = filter ? strlen(filter) : 0;
  if (tl > UINT32_MAX || fl > UINT32_MAX || pos_len > UINT32_MAX) return false;
  size_t n = sizeof label + 1 + 12 + tl + fl + pos_len;
  unsigned char *buf = kdao__malloc(n), *p = buf;
  if (!buf) return false;
  memcpy(p, label, sizeof label); /* with its NUL */
  p += sizeof label;
  *p++ = TOKEN_VERSION;
  put_be32(p, tl);
  memcpy(p + 4, table, tl);
  p += 4 + tl;
  put_be32(p, fl);
  if (fl) memcpy(p + 4, filter, fl);
  p += 4 + fl;
  put_be32(p, pos_len);
  if (pos_len) memcpy(p + 4, pos, pos_len);
  unsigned char full[EVP_MAX_MD_SIZE];
  unsigned int full_len = 0;
  bool ok = HMAC(EVP_sha256(), key, KDAO__PAGE_KEY_LEN, buf, n, full, &full_len) != NULL &&
            full_len >= TOKEN_MAC_LEN;
  kdao__free(buf);
  if (ok) memcpy(mac, full, TOKEN_MAC_LEN);
  return ok;
}

char *kdao__page_token_seal(const unsigned char key[KDAO__PAGE_KEY_LEN], const char *table,
                            const char *filter, const unsigned char *pos, size_t pos_len) {
  if (!key || !table || (!pos && pos_len)) return NULL;
  size_t n = 1 + pos_len + TOKEN_MAC_LEN;
  unsigned char *raw = kdao__malloc(n);
  if (!raw) return NULL;
  raw[0] = TOKEN_VERSION;
  if (pos_len) memcpy(raw + 1, pos, pos_len);
  char *token = NULL;
  if (token_mac(key, table, filter, pos, pos_len, raw + 1 + pos_len))
    token = kdao__b64_encode(raw, n);
  kdao__free(raw);
  return token;
}

int kdao__page_token_open(const unsigned char key[KDAO__PAGE_KEY_LEN], const char *table,
                          const char *filter, const char *token, unsigned char **pos,
                          size_t *pos_len) {
  *pos = NULL;
  *pos_len = 0;
  size_t n = 0;
  unsigned char *raw = token ? kdao__b64_decode(token, &n) : NULL;
  if (!raw) return 1; /* out of memory reads as malformed here: a token is small */
  unsigned char mac[TOKEN_MAC_LEN];
  int rc = 1;
  if (n < 1 + TOKEN_MAC_LEN || raw[0] != TOKEN_VERSION) goto done;
  size_t len = n - 1 - TOKEN_MAC_LEN;
  if (!token_mac(key, table, filter, raw + 1, len, mac)) {
    rc = -1;
    goto done;
  }
  if (CRYPTO_memcmp(mac, raw + 1 + len, TOKEN_MAC_LEN) != 0) goto done;
  memmove(raw, raw + 1, len);
  raw[len] = '\0';
  *pos = raw;
  *pos_len = len;
  raw = NULL;
  rc = 0;
done:
  kdao__free(raw);
  return rc;
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
