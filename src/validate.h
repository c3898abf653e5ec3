/*
 * validate.h — the validator's internals shared with the DAO, the factory and the binding
 * (validate.c).
 * Internal: never installed.
 */
#ifndef KDAO_VALIDATE_H
#define KDAO_VALIDATE_H

#include "schema.h"

/*
 * kdao_validate with Kong's `old_t`: when `old` (an object, borrowed) is given and `mode`
 * is an update, fields flagged immutable (and not required) whose new value differs from
 * the old one collect "<f> cannot be updated". kdao_validate() is this with old == NULL.
 */
int kdao__validate(const kdao_schema *schema, json_t *entity, kdao_mode mode, const json_t *old,
                   kdao_dao *dao, kdao_error **err);

/* True when `v` is an array in Kong's sense (utils.is_array): a JSON array, or an object
 * whose keys are exactly "1".."n" (an empty object included). */
bool kdao__is_array(const json_t *v);

/*
 * A string read as Lua's tonumber() does (the validator's coercion; independent of the
 * locale), as a JSON integer when integral: a new reference, or NULL when not a number.
 */
json_t *kdao__number_from_string(const char *s);

#endif
