/*
 * http_auth.c — admin_auth: parsing the setting, checking an Authorization header.
 */
#include "http_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

/* Longest Authorization value looked at: far more than any sane credential. */
#define MAX_CREDENTIAL 4096

static void digest(const void *data, size_t len, unsigned char out[32]) { SHA256(data, len, out); }

int kdao__http_auth_parse(const char *setting, kdao__http_auth *out) {
  memset(out, 0, sizeof *out);
  if (!setting) return 0;
  const char *rest = setting + 6;
  if (!strncmp(setting, "token:", 6) && *rest) {
    out->kind = KDAO__HTTP_AUTH_TOKEN;
  } else if (!strncmp(setting, "basic:", 6) && strchr(rest, ':') > rest && strchr(rest, ':')[1]) {
    out->kind = KDAO__HTTP_AUTH_BASIC;
  } else {
    return -1;
  }
  digest(rest, strlen(rest), out->digest);
  return 0;
}

/* The credential after `scheme` and its spaces, or NULL when the header uses another. */
static const char *credential(const char *authorization, const char *scheme, size_t *len) {
  size_t n = strlen(scheme);
  if (strncasecmp(authorization, scheme, n) != 0 || authorization[n] != ' ') return NULL;
  const char *s = authorization + n;
  while (*s == ' ') s++;
  size_t l = strlen(s);
  while (l > 0 && s[l - 1] == ' ') l--;
  *len = l;
  return l > 0 && l <= MAX_CREDENTIAL ? s : NULL;
}

/* Decodes standard base64 (RFC 4648 with padding) into out; its length, or -1 if malformed. */
static int base64_decode(const char *in, size_t len, unsigned char *out) {
  if (len % 4 != 0) return -1;
  int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
  if (n < 0) return -1;
  /* EVP_DecodeBlock counts the padding as zero bytes. */
  if (len >= 1 && in[len - 1] == '=') n--;
  if (len >= 2 && in[len - 2] == '=') n--;
  return n;
}

bool kdao__http_auth_check(const kdao__http_auth *a, const char *authorization) {
  if (a->kind == KDAO__HTTP_AUTH_NONE) return true;
  if (!authorization) return false;
  size_t len = 0;
  unsigned char presented[32];
  if (a->kind == KDAO__HTTP_AUTH_TOKEN) {
    const char *token = credential(authorization, "Bearer", &len);
    if (!token) return false;
    digest(token, len, presented);
  } else {
    const char *encoded = credential(authorization, "Basic", &len);
    unsigned char decoded[MAX_CREDENTIAL];
    int n = encoded ? base64_decode(encoded, len, decoded) : -1;
    if (n < 0) return false;
    digest(decoded, (size_t)n, presented);
    OPENSSL_cleanse(decoded, sizeof decoded);
  }
  bool ok = CRYPTO_memcmp(presented, a->digest, sizeof presented) == 0;
  OPENSSL_cleanse(presented, sizeof presented);
  return ok;
}

const char *kdao__http_auth_challenge(const kdao__http_auth *a) {
  return a->kind == KDAO__HTTP_AUTH_BASIC ? "Basic realm=\"kdao admin API\", charset=\"UTF-8\""
                                          : "Bearer realm=\"kdao admin API\"";
}
