/*
 * validate.h — the validator's internals shared with the DAO, the factory and the binding
 * (validate.c).
 * Internal: never installed.
 */
#ifndef KDAO_VALIDATE_H
#define KDAO_VALIDATE_H

#include "alloc.h"
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

/* The largest timestamp every backend stores: 9999-12-31T23:59:59.999Z, in milliseconds. */
#define KDAO__TIMESTAMP_MAX 253402300799999.0
/* The longest string of a unique or foreign field (indexed everywhere): below the smallest
 * index entry limit of the backends (docs/validation.md). */
#define KDAO__KEY_VALUE_MAX 2048u
/* The longest string of any other field: far below the smallest write size limit. */
#define KDAO__VALUE_MAX (1024u * 1024u)

/*
 * Whether `v`, already of `f`'s type, can be stored by every backend: id fields hold UUIDs,
 * timestamps lie in (0, KDAO__TIMESTAMP_MAX], strings fit the limits above, hold no NUL and
 * are valid UTF-8.
 * 0 when it can; -1 with *message (kdao__malloc()ed; NULL when out of memory) when not.
 */
int kdao__value_bounds(const kdao__field *f, const json_t *v, char **message);

#endif
