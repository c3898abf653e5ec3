/*
 * common.c — small helpers the built-in entity definitions share (schemas_int.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "factory.h"
#include "schema.h"
#include "util.h"
#include "validate.h"
#include "schemas/schemas_int.h"

const char *const kdao__pk_id[] = {"id", NULL};

static const char *const plugin_unique[] = {"api_id", "consumer_id", "name", NULL};
static const char *const acl_unique[] = {"consumer_id", "group", NULL};

/*
 * Kong's read-then-write checks, as data: plugins' self_check (a unique error on `name`) and
 * acls' `group` func (a schema error with its message), enforced by the backends instead.
 */
const kdao__unique_def kdao__unique_defs[] = {
    {&kdao__schema_plugins, plugin_unique, "name", NULL},
    {&kdao__schema_acls, acl_unique, "group", "ACL group already exist for this consumer"},
    {NULL, NULL, NULL, NULL},
};

bool kdao__is_blank(const char *s, size_t len) {
  /* Lua's %s: space, \t, \n, \v, \f, \r (a NUL byte is not blank). */
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '\0' || !strchr(" \t\n\v\f\r", s[i])) return false;
  }
  return true;
}

const char *kdao__plain_string(const json_t *v) {
  if (!json_is_string(v)) return NULL;
  const char *s = json_string_value(v);
  return strlen(s) == json_string_length(v) ? s : NULL;
}

size_t kdao__seq_size(const json_t *v) {
  if (json_is_array(v)) return json_array_size(v);
  if (json_is_object(v) && kdao__is_array(v)) return json_object_size(v);
  return 0;
}

json_t *kdao__seq_get(const json_t *v, size_t i) {
  if (json_is_array(v)) return json_array_get(v, i);
  char key[32];
  snprintf(key, sizeof key, "%zu", i + 1);
  return json_object_get(v, key);
}

int kdao__reject(char **message, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  *message = kdao__vasprintf(fmt, ap);
  va_end(ap);
  return 1;
}

kdao_error *kdao__schema_error(const char *message) {
  return kdao_error_new(KDAO_ERR_SCHEMA, message);
}
