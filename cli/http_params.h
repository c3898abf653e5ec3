/*
 * http_params.h — request-parameter handling of the admin API, kept free of any HTTP
 * library so it can be tested on strings: percent-decoding, query strings, flat form
 * fields, Kong's nested-parameter normalisation and the `admin_listen` address.
 */
#ifndef KDAO_HTTP_PARAMS_H
#define KDAO_HTTP_PARAMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Percent-decodes `s` in place ("+" becomes a space when `plus_is_space`, as in query
 * strings and form bodies). A malformed escape is kept literally, as browsers do. Returns
 * false when the decoded text would contain a NUL byte, which no kdao value may hold.
 */
bool kdao__http_decode(char *s, bool plus_is_space);

/*
 * Adds one flat form field to `flat` (an object): the first value of a key is a string,
 * repeated keys make an array in arrival order. `value` is `len` bytes, not NUL-terminated.
 * Returns 0, or -1 when out of memory or when the value contains a NUL byte.
 */
int kdao__http_form_add(json_t *flat, const char *key, const char *value, size_t len);

/*
 * Parses an application/x-www-form-urlencoded text (a query string or a form body) into
 * a new flat object, as kdao__http_form_add() builds it. NULL when out of memory or when
 * a key or value decodes to text holding a NUL byte.
 */
json_t *kdao__http_parse_urlencoded(const char *text);

/*
 * Kong's normalize_nested_params: every key holding dots becomes nested objects
 * ({"config.key": 1} → {"config": {"key": 1}}), recursively in object values; a key
 * ending in "[...]" ("hosts[]", "hosts[1]") appends its value to an array under the bare
 * name. Returns a new object, or NULL when out of memory.
 */
json_t *kdao__http_normalize(const json_t *flat);

/*
 * Splits an `admin_listen` value, "HOST:PORT" or "[IPv6]:PORT", into a new host string
 * (free with free()) and a port (0 allowed: the system picks one). Returns 0, or -1 on a
 * malformed value.
 */
int kdao__http_parse_listen(const char *listen, char **host, unsigned *port);

#endif
