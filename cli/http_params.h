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
 * Why a request's text cannot become a kdao string. Every value of an entity is a JSON
 * string, which jansson (and every database Kong supports) holds as UTF-8 without NUL bytes:
 * anything else must be refused before it reaches the library, where it would be stored as
 * is by an embedded backend or turn into a misleading "out of memory".
 */
typedef enum kdao__http_text {
  KDAO__HTTP_TEXT_OK = 0,
  KDAO__HTTP_TEXT_NUL,  /* holds a NUL byte */
  KDAO__HTTP_TEXT_UTF8, /* is not valid UTF-8 */
} kdao__http_text;

/* The bytes `s`..`s+len` as a kdao string would see them (strict UTF-8, no NUL). */
kdao__http_text kdao__http_check_text(const char *s, size_t len);

/* "holds a NUL byte", "is not valid UTF-8": completes "<what> ..." in an error message. */
const char *kdao__http_text_problem(kdao__http_text t);

/*
 * Percent-decodes `s` in place ("+" becomes a space when `plus_is_space`, as in query
 * strings and form bodies). A malformed escape is kept literally, as browsers do. The
 * decoded text is checked: on a problem, `s` holds an unspecified prefix of it.
 */
kdao__http_text kdao__http_unescape(char *s, bool plus_is_space);

/* kdao__http_unescape() == KDAO__HTTP_TEXT_OK. */
bool kdao__http_decode(char *s, bool plus_is_space);

/*
 * Adds one flat form field to `flat` (an object): the first value of a key is a string,
 * repeated keys make an array in arrival order. `value` is `len` bytes, not NUL-terminated;
 * it and `key` are checked as kdao__http_check_text() does. Returns 0, -1 when out of
 * memory, or the kdao__http_text problem of the key or the value (positive).
 */
int kdao__http_form_add(json_t *flat, const char *key, const char *value, size_t len);

/*
 * Parses an application/x-www-form-urlencoded text of `len` bytes (a query string or a form
 * body; a raw NUL byte in it is a problem, not its end) into a new flat object, as
 * kdao__http_form_add() builds it. NULL when out of memory (*problem KDAO__HTTP_TEXT_OK) or
 * when a key or value is not a kdao string (*problem says why).
 */
json_t *kdao__http_parse_urlencoded(const char *text, size_t len, kdao__http_text *problem);

/*
 * Checks every segment of a request path (percent-encoded, as sent) once decoded, as the
 * router will decode it. Returns the first problem found, or KDAO__HTTP_TEXT_OK.
 */
kdao__http_text kdao__http_check_path(const char *path);

/*
 * Looks at the first `len` bytes received on a connection, the start of a request. Returns
 * -1 while the head (request line and headers, up to the empty line) is incomplete and
 * within `max_header` bytes, 0 once it is complete and acceptable, or the HTTP status that
 * refuses it with *message: 400 for a NUL byte (which HTTP servers take for the end of a
 * line, truncating what follows) or a Content-Length that is not a number, 414 when the
 * request line alone exceeds `max_header`, 431 when the head does or has too many fields.
 * Empty lines before the request line are skipped, as RFC 9112 §2.2 allows.
 */
int kdao__http_check_head(const char *buf, size_t len, size_t max_header, const char **message);

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
