/*
 * conf.h — configuration internals shared with the factory and the backends (conf.c). Internal.
 */
#ifndef KDAO_CONF_H
#define KDAO_CONF_H

#include "kdao.h"

/*
 * One configuration key. The generic keys live in conf.c, each backend's in its own file
 * (kdao__backend_ops.options); conf.c serves them all as one table. `def` is already
 * canonical text; NULL means unset by default.
 */
typedef enum kdao__conf_type {
  KDAO__CONF_STRING = 0,
  KDAO__CONF_NUMBER,
  KDAO__CONF_BOOLEAN,
  KDAO__CONF_ENUM,
  KDAO__CONF_ARRAY
} kdao__conf_type;

#define KDAO__CONF_SECRET 0x1u /* never printed: kdao_config_dump() masks it */

typedef struct kdao__conf_option {
  const char *key;
  kdao__conf_type type;
  const char *def;
  unsigned flags;
  const char *const *allowed; /* KDAO__CONF_ENUM: NULL-terminated */
  long long min, max;         /* KDAO__CONF_NUMBER: inclusive bounds */
  const char *doc;
} kdao__conf_option;

/* Rows of an option table; end one with KDAO__OPT_END. */
#define KDAO__OPT_STR(k, d, doc) \
  { k, KDAO__CONF_STRING, d, 0, NULL, 0, 0, doc }
#define KDAO__OPT_SECRET(k, doc) \
  { k, KDAO__CONF_STRING, NULL, KDAO__CONF_SECRET, NULL, 0, 0, doc }
#define KDAO__OPT_NUM(k, d, lo, hi, doc) \
  { k, KDAO__CONF_NUMBER, d, 0, NULL, lo, hi, doc }
#define KDAO__OPT_BOOL(k, d, doc) \
  { k, KDAO__CONF_BOOLEAN, d, 0, NULL, 0, 0, doc }
#define KDAO__OPT_ENUM(k, d, vals, doc) \
  { k, KDAO__CONF_ENUM, d, 0, vals, 0, 0, doc }
#define KDAO__OPT_ARRAY(k, d, doc) \
  { k, KDAO__CONF_ARRAY, d, 0, NULL, 0, 0, doc }
#define KDAO__OPT_END \
  { NULL, KDAO__CONF_STRING, NULL, 0, NULL, 0, 0, NULL }

/* The largest configuration file read (a kong.conf is a few KB). */
#define KDAO__CONFIG_FILE_MAX (1024u * 1024u)

/* A deep copy of `cfg` (the factory keeps one). NULL when out of memory. */
kdao_config *kdao__config_copy(const kdao_config *cfg);

/*
 * For config_check hooks: runs `check` on each element of array key `key` (unset: none).
 * KDAO_OK with *msg the first complaint or NULL, or KDAO_ERR_NOMEM.
 */
int kdao__config_check_each(const kdao_config *cfg, const char *key, char *(*check)(const char *),
                            char **msg);

/* The config files' integer syntax: decimal, optional '-', nothing around it. */
bool kdao__config_parse_int(const char *s, long long *out);

/* Typed getters of a key's value, for backends and the factory. */
const char *kdao__config_str(const kdao_config *cfg, const char *key);
long long kdao__config_int(const kdao_config *cfg, const char *key);
bool kdao__config_bool(const kdao_config *cfg, const char *key);

#endif
