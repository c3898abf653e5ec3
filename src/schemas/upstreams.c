/*
 * upstreams.c — the `upstreams` entity of Kong 0.10.4 (kong/dao/schemas/upstreams.lua): a
 * named load balancer whose `orderlist` is a permutation of 1..slots, kept in the datastore
 * so that every Kong node balances with the same "randomness".
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/rand.h>

#include "factory.h"
#include "schemas/schemas_int.h"

#define SLOTS_MIN 10
#define SLOTS_MAX 65536
#define SLOTS_MSG "number of slots must be between 10 and 65536"

/* The name is referenced from apis.upstream_url: a plain hostname, no IP, no port. */
static kdao_error *upstream_check_name(const json_t *name) {
  if (!json_is_string(name)) return NULL;
  if (!kdao__plain_string(name))
    return kdao__schema_error("Invalid name; must be a valid hostname");
  kdao__host h;
  int rc = kdao__normalize_ip(json_string_value(name), &h);
  kdao__host_clear(&h); /* only the type and port matter here */
  if (rc == KDAO_ERR_NOMEM) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  if (rc != KDAO_OK) return kdao__schema_error("Invalid name; must be a valid hostname");
  if (h.type != KDAO__HOST_NAME) return kdao__schema_error("Invalid name; no ip addresses allowed");
  if (h.port >= 0) return kdao__schema_error("Invalid name; no port allowed");
  return NULL;
}

/* A given orderlist of the right size must hold each of 1..slots exactly once. */
static kdao_error *upstream_check_orderlist(const json_t *order, size_t slots) {
  bool *seen = kdao__calloc(slots + 1, sizeof *seen);
  if (!seen) return kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
  kdao_error *e = NULL;
  for (size_t i = 0; i < slots && !e; i++) {
    const json_t *v = kdao__seq_get(order, i);
    double d = json_is_number(v) ? json_number_value(v) : 0;
    if (d < 1 || d > (double)slots || floor(d) != d || seen[(size_t)d])
      e = kdao__schema_error("invalid orderlist");
    else
      seen[(size_t)d] = true;
  }
  kdao__free(seen);
  return e;
}

/* splitmix64: a small, well-mixed generator; only the seed needs to be unpredictable. */
static uint64_t upstream_next_random(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/*
 * A uniformly random permutation of 1..slots (Fisher-Yates; Kong sorted by random keys,
 * which favours some orders). The modulo bias is below 2^-47 for slots <= 65536.
 */
static kdao_error *upstream_generate_orderlist(json_t *entity, size_t slots) {
  uint64_t state = 0;
  if (RAND_bytes((unsigned char *)&state, sizeof state) != 1)
    state = (uint64_t)kdao__now_ms() ^ (uint64_t)(uintptr_t)&state;
  json_int_t *perm = kdao__malloc(slots * sizeof *perm);
  json_t *list = perm ? json_array() : NULL;
  kdao_error *e = NULL;
  if (!list) goto nomem;
  for (size_t i = 0; i < slots; i++) perm[i] = (json_int_t)i + 1;
  for (size_t i = slots - 1; i > 0; i--) {
    size_t j = (size_t)(upstream_next_random(&state) % (i + 1));
    json_int_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  for (size_t i = 0; i < slots; i++) {
    if (json_array_append_new(list, json_integer(perm[i])) != 0) goto nomem;
  }
  if (json_object_set(entity, "orderlist", list) != 0) goto nomem;
  goto cleanup;
nomem:
  e = kdao_error_new(KDAO_ERR_NOMEM, "out of memory");
cleanup:
  json_decref(list);
  kdao__free(perm);
  return e;
}

/*
 * Kong's self_check, on insert and updates alike. A partial update may carry neither name
 * nor slots (Kong then raised a Lua error): only the checks whose inputs are present run.
 * When slots is given without an orderlist, a fresh permutation is generated for it, as on
 * insert, so that the stored orderlist always matches the stored slots.
 */
static kdao_error *upstream_self_check(kdao_dao *dao, const kdao_schema *schema, json_t *entity,
                                       kdao_mode mode, void *ud) {
  (void)dao, (void)schema, (void)mode, (void)ud;
  kdao_error *e = upstream_check_name(json_object_get(entity, "name"));
  if (e) return e;

  const json_t *slots_v = json_object_get(entity, "slots");
  if (!json_is_number(slots_v)) return NULL;
  double slots = json_number_value(slots_v);
  /* Kong let 10.5 through and then stored an orderlist that can never match it again. */
  if (slots < SLOTS_MIN || slots > SLOTS_MAX || floor(slots) != slots)
    return kdao__schema_error(SLOTS_MSG);

  const json_t *order = json_object_get(entity, "orderlist");
  size_t len = kdao__seq_size(order);
  if (len == (size_t)slots) return upstream_check_orderlist(order, len);
  if (len > 0) return kdao__schema_error("size mismatch between 'slots' and 'orderlist'");
  return upstream_generate_orderlist(entity, (size_t)slots);
}

static const kdao_field_def upstream_fields[] = {
    KDAO__FIELD_ID,
    KDAO__FIELD_CREATED_AT,
    {.name = "name", .type = KDAO_TYPE_STRING, .flags = KDAO_FIELD_REQUIRED | KDAO_FIELD_UNIQUE},
    {.name = "slots", .type = KDAO_TYPE_NUMBER, .default_json = "100"},
    {.name = "orderlist", .type = KDAO_TYPE_ARRAY, .default_json = "[]"},
    {.name = NULL},
};

const kdao_schema_def kdao__schema_upstreams = {
    .version = KDAO_DEF_VERSION,
    .name = "upstreams",
    .table = "upstreams",
    .primary_key = kdao__pk_id,
    .fields = upstream_fields,
    .self_check = upstream_self_check,
};
