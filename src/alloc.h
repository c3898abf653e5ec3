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
/*
 * How many allocations have failed on this thread so far (kdao's and, once
 * kdao_set_allocator() has run, jansson's). A call compares it before and after a step
 * whose callees cannot all report out of memory (callbacks: a NULL default, a message
 * that could not be formatted) to tell a real answer from one an allocation failure made.
 */
unsigned long kdao__alloc_failures(void);
/* strdup/strndup on kdao's allocator; NULL for NULL. */
char *kdao__strdup(const char *s);
char *kdao__strndup(const char *s, size_t n);

#endif
