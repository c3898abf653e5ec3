/*
 * alloc.h — the allocator every byte libkdao owns comes from (alloc.c): libc's by default,
 * the caller's after kdao_set_allocator(). Internal: never installed.
 *
 * Memory a library hands back under its own rules stays with them: getline()/scandir()
 * buffers go back to libc's free(), a database library's to that library's own free.
 */
#ifndef KDAO_ALLOC_H
#define KDAO_ALLOC_H

#include <stddef.h>

void *kdao__malloc(size_t n);
void *kdao__calloc(size_t count, size_t size);
void *kdao__realloc(void *p, size_t n);
void kdao__free(void *p);
/* strdup/strndup on kdao's allocator; NULL for NULL. */
char *kdao__strdup(const char *s);
char *kdao__strndup(const char *s, size_t n);

#endif
