/*
 * alloc.c — the client's allocator hook: libc's by default, a host library's (kdao's
 * kdao_set_allocator) when set, so that one allocator serves the whole process's data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cql_int.h"

static void *(*cql_malloc_fn)(size_t) = malloc;
static void *(*cql_realloc_fn)(void *, size_t) = realloc;
static void (*cql_free_fn)(void *) = free;

void cql_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                       void (*free_fn)(void *)) {
  cql_malloc_fn = malloc_fn ? malloc_fn : malloc;
  cql_realloc_fn = realloc_fn ? realloc_fn : realloc;
  cql_free_fn = free_fn ? free_fn : free;
}

void *cql__malloc(size_t n) { return cql_malloc_fn(n ? n : 1); }

void *cql__calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  void *p = cql__malloc(count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

void *cql__realloc(void *p, size_t n) { return cql_realloc_fn(p, n ? n : 1); }

void cql__free(void *p) {
  if (p) cql_free_fn(p);
}
