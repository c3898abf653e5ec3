/*
 * conf.h — configuration internals shared with the factory and the CLI (conf.c). Internal.
 */
#ifndef KDAO_CONF_H
#define KDAO_CONF_H

#include "kdao.h"

/* A deep copy of `cfg` (the factory keeps one). NULL when out of memory. */
kdao_config *kdao__config_copy(const kdao_config *cfg);

/*
 * Checks the rules that span several keys or look inside a value (Kong's conf_loader
 * "custom validations"): DCAwareRoundRobin needs cassandra_local_datacenter, contact points
 * carry no port, data centers read `name:N`, admin_listen reads `address:port`. They cannot
 * run per source, because a later source may complete an earlier one (a file selecting
 * DCAwareRoundRobin, the environment naming the data center), so they run once everything
 * is loaded: in kdao_factory_new() and in the CLI. KDAO_ERR_CONFIG with the first failure.
 */
int kdao__config_check(const kdao_config *cfg, kdao_error **err);

/*
 * The option table as JSON, for `kdao config --keys` and the docs: an array, in table order,
 * of {"key", "type", "default" (text or null), "secret", "values" (enums), "min" and "max"
 * (numbers), "env", "description"}. New reference; NULL when out of memory.
 */
json_t *kdao__config_describe(void);

/* Typed getters of a key's value, for backends and the factory. */
const char *kdao__config_str(const kdao_config *cfg, const char *key);
long long kdao__config_int(const kdao_config *cfg, const char *key);
bool kdao__config_bool(const kdao_config *cfg, const char *key);

#endif
