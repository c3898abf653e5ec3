/*
 * schemas_int.h — helpers shared by the built-in entity definitions of src/schemas/.
 * Private to src/schemas/ (and its unit tests): nothing outside should include it.
 *
 * The host parsing here reproduces Kong 0.10.4's kong/tools/utils.lua (hostname_type,
 * normalize_ip, format_host) because apis.hosts, upstreams.name and targets.target accept
 * exactly what those functions accept, and targets store what format_host prints.
 */
#ifndef KDAO_SCHEMAS_INT_H
#define KDAO_SCHEMAS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "alloc.h"
#include "kdao.h"

/* The two fields every core entity starts with (Kong: required + dao_insert_value). */
#define KDAO__FIELD_ID \
  { .name = "id", .type = KDAO_TYPE_ID, .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_INSERT_VALUE }
#define KDAO__FIELD_CREATED_AT                                                    \
  {                                                                               \
    .name = "created_at", .type = KDAO_TYPE_TIMESTAMP,                            \
    .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_IMMUTABLE | KDAO_FIELD_INSERT_VALUE \
  }

/* Primary key {"id"}, shared by most entities. */
extern const char *const kdao__pk_id[];

/* ---- hosts (kong.tools.utils) ---- */

/* What utils.hostname_type decides, by exclusion rather than validation. */
typedef enum kdao__host_type {
  KDAO__HOST_IPV4 = 0,
  KDAO__HOST_IPV6,
  KDAO__HOST_NAME
} kdao__host_type;

/* A parsed host, as utils.normalize_ip returns it. */
typedef struct kdao__host {
  kdao__host_type type;
  char *host; /* owned: IPv4 without leading zeros, IPv6 expanded lower-case without
                 brackets, a name as given */
  long port;  /* -1 when the address had none */
} kdao__host;

/* utils.hostname_type: more than one ':' is IPv6, only digits and dots IPv4, else a name. */
kdao__host_type kdao__hostname_type(const char *address);

/*
 * utils.normalize_ip: parses "ipv4[:port]", "ipv6", "[ipv6][:port]" or "name[:port]" into
 * *out (free its host with kdao__host_clear). Returns KDAO_OK, KDAO_ERR_SCHEMA when the
 * address is invalid (out->host stays NULL), KDAO_ERR_NOMEM.
 */
int kdao__normalize_ip(const char *address, kdao__host *out);

/* Frees out->host; safe on a cleared or failed host. */
void kdao__host_clear(kdao__host *h);

/*
 * utils.format_host: "host:port", IPv6 in brackets; `default_port` (or none when < 0) is
 * used when the host has no port. kdao__malloc()ed; NULL when out of memory.
 */
char *kdao__format_host(const kdao__host *h, long default_port);

/* ---- small helpers for the checks ---- */

/* True when the `len` bytes of `s` are only Lua %s whitespace (Penlight's strip(s) == ""). */
bool kdao__is_blank(const char *s, size_t len);

/* A string value's bytes when it is a JSON string without NUL bytes, else NULL. */
const char *kdao__plain_string(const json_t *v);

/*
 * Sequences in Kong's sense: a JSON array, or an object keyed "1".."n" (what a Lua table
 * that ipairs() walks looks like once encoded). Size 0 for anything else.
 */
size_t kdao__seq_size(const json_t *v);
json_t *kdao__seq_get(const json_t *v, size_t i);

/* Rejects from a field func: stores a kdao__malloc()ed message and returns 1. */
int kdao__reject(char **message, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A schema-kind self_check rejection carrying `message` (never NULL unless out of memory). */
kdao_error *kdao__schema_error(const char *message);

#endif
