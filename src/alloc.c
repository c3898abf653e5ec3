/*
 * alloc.c — the allocator hook (kdao_set_allocator). One table of three functions, read on
 * every allocation: a plain struct copy keeps it cheap, and hosts set it once, before any
 * other call (documented in kdao.h), so no lock guards it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "cql.h"
#include "kdao.h"

static kdao_allocator current = {malloc, realloc, free};

/* Per thread: a failure belongs to the call that saw it (kdao__alloc_failures). */
static _Thread_local unsigned long failures;

unsigned long kdao__alloc_failures(void) { return failures; }

void *kdao__malloc(size_t n) {
  void *p = current.malloc(n ? n : 1);
  if (!p) failures++;
  return p;
}

void *kdao__calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  void *p = kdao__malloc(count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

void *kdao__realloc(void *p, size_t n) {
  void *q = current.realloc(p, n ? n : 1);
  if (!q) failures++;
  return q;
}

void kdao__free(void *p) {
  if (p) current.free(p);
}

char *kdao__strdup(const char *s) { return s ? kdao__strndup(s, strlen(s)) : NULL; }

char *kdao__strndup(const char *s, size_t n) {
  if (!s) return NULL;
  size_t len = strnlen(s, n);
  char *copy = kdao__malloc(len + 1);
  if (copy) {
    memcpy(copy, s, len);
    copy[len] = '\0';
  }
  return copy;
}

kdao_status kdao_set_allocator(const kdao_allocator *a) {
  if (a && (!a->malloc || !a->realloc || !a->free)) return KDAO_ERR_MISUSE;
  current = a ? *a : (kdao_allocator){malloc, realloc, free};
  /* Through kdao's functions, so that jansson's failures are counted too. */
  json_set_alloc_funcs(kdao__malloc, kdao__free);
  cql_set_allocator(current.malloc, current.realloc, current.free);
  return KDAO_OK;
}

void kdao_free(void *ptr) { kdao__free(ptr); }
