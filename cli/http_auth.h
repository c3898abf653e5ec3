/*
 * http_auth.h — the admin API's credentials (admin_auth): a bearer token or Basic
 * credentials, checked in constant time.
 *
 * Only a SHA-256 digest of the configured secret is kept, and a presented credential is
 * digested before the comparison: comparing two digests of equal length with CRYPTO_memcmp
 * tells an attacker nothing about the secret's length or its first differing byte.
 */
#ifndef KDAO_HTTP_AUTH_H
#define KDAO_HTTP_AUTH_H

#include <stdbool.h>

typedef enum kdao__http_auth_kind {
  KDAO__HTTP_AUTH_NONE = 0, /* every request is let in */
  KDAO__HTTP_AUTH_TOKEN,    /* Authorization: Bearer <token> */
  KDAO__HTTP_AUTH_BASIC     /* Authorization: Basic base64(<user>:<password>) */
} kdao__http_auth_kind;

typedef struct kdao__http_auth {
  kdao__http_auth_kind kind;
  unsigned char digest[32]; /* SHA-256 of the token, or of "<user>:<password>" */
} kdao__http_auth;

/*
 * Reads an admin_auth value (`token:<secret>`, `basic:<user>:<password>`; NULL: none).
 * Returns 0, or -1 when the value has neither form (kdao_config_check refuses those).
 */
int kdao__http_auth_parse(const char *setting, kdao__http_auth *out);

/* Whether an Authorization header value (NULL: absent) carries the configured credentials. */
bool kdao__http_auth_check(const kdao__http_auth *a, const char *authorization);

/* The WWW-Authenticate value of a 401, naming the scheme a client must use. */
const char *kdao__http_auth_challenge(const kdao__http_auth *a);

#endif
