/* content.h — content similarity from shared categories and tags.
 *
 * Categories and tags are interned to ids (separately); each id has a posting
 * list of the items that carry it. Similarity of item j to a query feature set
 * Q is the IDF-weighted overlap, sum over shared features f of idf(f)^2,
 * divided by |Q|_idf * sqrt(number of j's features) (a cosine with the
 * candidate side approximated), idf(f) = ln(1 + N / df(f)).
 * A new item is indexed the moment it is upserted, so it has neighbours at once.
 *
 * Not thread-safe: the engine guards the index with a rwlock (writers: the
 * writer thread; readers: request threads). */
#ifndef RECD_MODEL_CONTENT_H
#define RECD_MODEL_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "util/stampmap.h"
#include "util/strmap.h"
#include "util/u32map.h"

typedef struct {
  uint32_t *items;
  uint32_t n, cap;
} posting;

typedef struct {
  strmap names;
  posting *post;
  size_t post_cap;
} content_field;

typedef struct {
  content_field cats, tags;
  uint8_t *nfeat;          /* iid -> number of features */
  size_t nfeat_cap;
  size_t nitems;           /* items indexed */
} content_index;

void content_init(content_index *c);
void content_release(content_index *c);
uint32_t content_category_id(content_index *c, const char *name, size_t len);
uint32_t content_tag_id(content_index *c, const char *name, size_t len);
uint32_t content_find_category(const content_index *c, const char *name, size_t len);
const char *content_category_name(const content_index *c, uint32_t id);
const char *content_tag_name(const content_index *c, uint32_t id);
size_t content_ncategories(const content_index *c);
/* replace an item's features (old ones are removed from postings) */
void content_set(content_index *c, uint32_t iid, const uint32_t *ocats, int nocats, const uint32_t *otags,
                 int notags, const uint32_t *cats, int ncats, const uint32_t *tags, int ntags);

typedef struct {
  uint32_t iid;
  float score;
} content_hit;

/* Working memory for content_similar, reusable across calls (by one thread at
 * a time): keeps a busy caller free of per-call allocations. */
typedef struct {
  stampmap idx;            /* iid -> index in hits */
  content_hit *hits;
  size_t cap;
} content_scratch;

void content_scratch_init(content_scratch *s);
void content_scratch_release(content_scratch *s);

/* Top `k` items similar to the feature set, excluding `self` (UINT32_MAX for
 * none). Scans at most `scan_cap` postings per feature, newest first.
 * Writes up to k hits sorted by score into out; returns the count.
 * `scr` may be NULL (a temporary one is used). */
size_t content_similar(const content_index *c, const uint32_t *cats, int ncats, const uint32_t *tags,
                       int ntags, uint32_t self, size_t k, size_t scan_cap, content_scratch *scr, content_hit *out);
/* items of a category (borrowed; valid under the index lock) */
const posting *content_category_items(const content_index *c, uint32_t cat);
double content_idf(const content_index *c, const content_field *f, uint32_t id);
size_t content_memory(const content_index *c);

#endif
