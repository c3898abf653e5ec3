/*
 * facts.c — loading and comparing the compatibility tests' reference facts (see facts.h).
 */
#include "facts.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char MIGRATION[] = "migration|";

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (p == NULL) {
    fputs("facts: out of memory\n", stderr);
    abort();
  }
  return p;
}

void ref_lines_add(ref_lines *l, const char *s) {
  size_t len = strlen(s);
  l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
  l->v[l->n] = memcpy(xrealloc(NULL, len + 1), s, len + 1);
  l->n++;
}

void ref_lines_add_migration(ref_lines *l, const char *identifier, const char *name) {
  size_t len = sizeof MIGRATION + strlen(identifier) + 1 + strlen(name);
  char *s = xrealloc(NULL, len);
  snprintf(s, len, "%s%s|%s", MIGRATION, identifier, name);
  ref_lines_add(l, s);
  free(s);
}

static int cmp_line(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void ref_lines_sort(ref_lines *l) {
  if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, cmp_line);
}

void ref_lines_free(ref_lines *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* The length of a line's subject, or 0 when the line has fewer fields than a fact. */
static size_t subject_len(const char *line) {
  const char *bar = strchr(line, '|');
  if (bar == NULL || bar == line) return 0;
  const char *next = strchr(bar + 1, '|');
  if (next == NULL) return 0;
  return (size_t)((line[0] == '(' ? next : bar) - line);
}

int ref_load(const char *path, ref_lines *catalog, ref_lines *migrations) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL) {
    perror(path);
    return -1;
  }
  char *line = NULL;
  size_t cap = 0;
  int rc = 0;
  for (unsigned no = 1; getline(&line, &cap, fp) > 0; no++) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0' || line[0] == '#') continue;
    if (subject_len(line) == 0) {
      fprintf(stderr, "%s:%u: not a fact (<subject>|<what>|<value>): %s\n", path, no, line);
      rc = -1;
      break;
    }
    ref_lines_add(strncmp(line, MIGRATION, sizeof MIGRATION - 1) == 0 ? migrations : catalog, line);
  }
  if (ferror(fp)) {
    perror(path);
    rc = -1;
  }
  free(line);
  fclose(fp);
  ref_lines_sort(catalog);
  return rc;
}

/* Does `line` belong to the subject of `len` bytes at `subject`? */
static bool of_subject(const char *line, const char *subject, size_t len) {
  return strncmp(line, subject, len) == 0 && line[len] == '|';
}

/* The first index of sorted `l` whose line belongs to the subject (l->n when none does). */
static size_t subject_start(const ref_lines *l, const char *subject, size_t len) {
  size_t lo = 0, hi = l->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strncmp(l->v[mid], subject, len);
    /* a line equal on `len` bytes sorts before the subject's lines when its next byte is
     * below '|' (another subject that starts with this one's name) */
    if (c < 0 || (c == 0 && (unsigned char)l->v[mid][len] < '|'))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

size_t ref_subject_count(const ref_lines *catalog) {
  size_t n = 0;
  for (size_t i = 0; i < catalog->n; i++) {
    size_t len = subject_len(catalog->v[i]);
    if (i == 0 || !of_subject(catalog->v[i - 1], catalog->v[i], len)) n++;
  }
  return n;
}

/*
 * Prints, under the subject's header (once), the lines of sorted `a`[a0, a_end) missing from
 * sorted `b`[b0, b_end), each prefixed with `sign`; returns how many.
 */
static size_t missing(const ref_lines *a, size_t a0, size_t a_end, const ref_lines *b, size_t b0,
                      size_t b_end, char sign, const char *header, FILE *out, bool *printed) {
  size_t n = 0;
  for (size_t i = a0, j = b0; i < a_end; i++) {
    while (j < b_end && strcmp(b->v[j], a->v[i]) < 0) j++;
    if (j < b_end && strcmp(b->v[j], a->v[i]) == 0) continue;
    if (!*printed) fputs(header, out);
    *printed = true;
    fprintf(out, "%c%s\n", sign, a->v[i]);
    n++;
  }
  return n;
}

size_t ref_compare_catalog(const ref_lines *ours, const ref_lines *reference, FILE *out) {
  size_t differences = 0;
  for (size_t i = 0; i < ours->n;) {
    const char *subject = ours->v[i];
    size_t len = subject_len(subject);
    if (len == 0) { /* a catalog query of the test produced something other than a fact */
      fprintf(out, "@@ (malformed) @@\n+%s\n", subject);
      differences++;
      i++;
      continue;
    }
    size_t end = i;
    while (end < ours->n && of_subject(ours->v[end], subject, len)) end++;
    size_t r = subject_start(reference, subject, len), r_end = r;
    while (r_end < reference->n && of_subject(reference->v[r_end], subject, len)) r_end++;

    char header[512];
    snprintf(header, sizeof header, "@@ %.*s @@%s\n", (int)len, subject,
             r == r_end ? " (not in the reference at all)" : "");
    bool printed = false;
    differences += missing(reference, r, r_end, ours, i, end, '-', header, out, &printed);
    differences += missing(ours, i, end, reference, r, r_end, '+', header, out, &printed);
    i = end;
  }
  return differences;
}

/* The names `l` lists for `identifier`, comma-separated into `out`; returns how many. */
static size_t names_of(const ref_lines *l, const char *identifier, char **out) {
  size_t n = 0, used = 0, id_len = strlen(identifier);
  *out = xrealloc(NULL, 1);
  (*out)[0] = '\0';
  for (size_t i = 0; i < l->n; i++) {
    const char *id = l->v[i] + sizeof MIGRATION - 1;
    if (strncmp(id, identifier, id_len) != 0 || id[id_len] != '|') continue;
    const char *name = id + id_len + 1;
    size_t len = strlen(name);
    *out = xrealloc(*out, used + len + 3);
    used += (size_t)sprintf(*out + used, "%s%s", n ? ", " : "", name);
    n++;
  }
  return n;
}

size_t ref_compare_migrations(const ref_lines *ours, const ref_lines *reference, FILE *out) {
  size_t mismatches = 0;
  for (size_t i = 0; i < ours->n; i++) {
    const char *id = ours->v[i] + sizeof MIGRATION - 1;
    size_t id_len = strcspn(id, "|");
    bool seen = false;
    for (size_t j = 0; j < i && !seen; j++)
      seen = strncmp(ours->v[j], ours->v[i], sizeof MIGRATION + id_len) == 0;
    if (seen) continue;
    char *identifier = strndup(id, id_len), *want = NULL, *got = NULL;
    size_t n_want = names_of(reference, identifier, &want);
    names_of(ours, identifier, &got);
    if (n_want == 0 || strcmp(want, got) != 0) {
      fprintf(out, "schema_migrations '%s':\n  reference: %s\n  kdao:      %s\n", identifier,
              n_want ? want : "(no such identifier)", got);
      mismatches++;
    }
    free(identifier);
    free(want);
    free(got);
  }
  return mismatches;
}
