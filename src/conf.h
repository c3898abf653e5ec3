/*
 * conf.h — configuration internals shared with the factory and the backends (conf.c). Internal.
 */
#ifndef KDAO_CONF_H
#define KDAO_CONF_H

#include "kdao.h"

/* A deep copy of `cfg` (the factory keeps one). NULL when out of memory. */
kdao_config *kdao__config_copy(const kdao_config *cfg);

/* Typed getters of a key's value, for backends and the factory. */
const char *kdao__config_str(const kdao_config *cfg, const char *key);
long long kdao__config_int(const kdao_config *cfg, const char *key);
bool kdao__config_bool(const kdao_config *cfg, const char *key);

#endif
