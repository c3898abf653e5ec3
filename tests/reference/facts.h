/*
 * facts.h — the reference data of the compatibility tests (the .facts files of
 * tests/reference): load a facts file and compare what a backend's catalog says of kdao's
 * schema with it.
 *
 * A fact is one line "<subject>|<what>|<value>" (the files' headers document each kind). The
 * subject is the first field, or the first two when the first is parenthesized: "(function)"
 * names a kind of object, not a table. Migration lines ("migration|<identifier>|<name>") are
 * kept apart, in file order, because their order is part of the fact.
 */
#ifndef KDAO_TEST_FACTS_H
#define KDAO_TEST_FACTS_H

#include <stddef.h>
#include <stdio.h>

typedef struct ref_lines {
  char **v;
  size_t n;
} ref_lines;

void ref_lines_add(ref_lines *l, const char *s);
/* Adds "migration|<identifier>|<name>". */
void ref_lines_add_migration(ref_lines *l, const char *identifier, const char *name);
/* Byte order (strcmp), the order every comparison below expects of catalog lines. */
void ref_lines_sort(ref_lines *l);
void ref_lines_free(ref_lines *l);

/*
 * Reads the facts file at `path`: catalog facts into `catalog` (sorted), migration lines into
 * `migrations` (file order). Returns 0, or -1 with a message on stderr when the file cannot
 * be read or holds a line that is no fact.
 */
int ref_load(const char *path, ref_lines *catalog, ref_lines *migrations);

/* The number of distinct subjects among sorted catalog lines. */
size_t ref_subject_count(const ref_lines *catalog);

/*
 * Compares kdao's catalog facts with the reference's, both sorted: every subject kdao has
 * must be one of the reference's, with exactly the reference's lines. Subjects only the
 * reference has (tables of plugins kdao does not carry) are not compared. Prints the
 * differences to `out` as a diff per subject ("-" reference only, "+" kdao only) and returns
 * how many lines differ.
 */
size_t ref_compare_catalog(const ref_lines *ours, const ref_lines *reference, FILE *out);

/*
 * Compares the migration names kdao records with the reference's, for each identifier kdao
 * records: same names, same order. Identifiers only the reference has are not compared.
 * Prints each mismatching identifier's two lists to `out`; returns the number of mismatching
 * identifiers.
 */
size_t ref_compare_migrations(const ref_lines *ours, const ref_lines *reference, FILE *out);

#endif
