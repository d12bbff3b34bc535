#include "model/content.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/popularity.h"
#include "util/mem.h"

static void field_init(content_field *f) {
  strmap_init(&f->names);
  f->post = NULL;
  f->post_cap = 0;
}

static void field_release(content_field *f) {
  for (size_t i = 0; i < f->post_cap; i++) free(f->post[i].items);
  free(f->post);
  strmap_release(&f->names);
}

void content_init(content_index *c) {
  memset(c, 0, sizeof *c);
  field_init(&c->cats);
  field_init(&c->tags);
}

void content_release(content_index *c) {
  field_release(&c->cats);
  field_release(&c->tags);
  free(c->nfeat);
  memset(c, 0, sizeof *c);
}

static uint32_t field_id(content_field *f, const char *name, size_t len) {
  uint32_t id = strmap_intern(&f->names, name, len, NULL);
  if (id >= f->post_cap) {
    size_t ncap = f->post_cap ? f->post_cap * 2 : 64;
    while (ncap <= id) ncap *= 2;
    f->post = xrealloc(f->post, ncap * sizeof *f->post);
    memset(f->post + f->post_cap, 0, (ncap - f->post_cap) * sizeof *f->post);
    f->post_cap = ncap;
  }
  return id;
}

uint32_t content_category_id(content_index *c, const char *name, size_t len) { return field_id(&c->cats, name, len); }
uint32_t content_tag_id(content_index *c, const char *name, size_t len) { return field_id(&c->tags, name, len); }
uint32_t content_find_category(const content_index *c, const char *name, size_t len) {
  return strmap_find(&c->cats.names, name, len);
}
const char *content_category_name(const content_index *c, uint32_t id) { return strmap_key(&c->cats.names, id); }
const char *content_tag_name(const content_index *c, uint32_t id) { return strmap_key(&c->tags.names, id); }
size_t content_ncategories(const content_index *c) { return strmap_count(&c->cats.names); }

static void post_remove(posting *p, uint32_t iid) {
  for (uint32_t i = p->n; i-- > 0;)
    if (p->items[i] == iid) {
      memmove(p->items + i, p->items + i + 1, (p->n - i - 1) * sizeof(uint32_t));
      p->n--;
      return;
    }
}

static void post_add(posting *p, uint32_t iid) {
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 8;
    p->items = xrealloc(p->items, p->cap * sizeof(uint32_t));
  }
  p->items[p->n++] = iid;
}

void content_set(content_index *c, uint32_t iid, const uint32_t *ocats, int nocats, const uint32_t *otags,
                 int notags, const uint32_t *cats, int ncats, const uint32_t *tags, int ntags) {
  for (int i = 0; i < nocats; i++) post_remove(&c->cats.post[ocats[i]], iid);
  for (int i = 0; i < notags; i++) post_remove(&c->tags.post[otags[i]], iid);
  for (int i = 0; i < ncats; i++) post_add(&c->cats.post[cats[i]], iid);
  for (int i = 0; i < ntags; i++) post_add(&c->tags.post[tags[i]], iid);
  if (iid >= c->nfeat_cap) {
    size_t ncap = c->nfeat_cap ? c->nfeat_cap * 2 : 1024;
    while (ncap <= iid) ncap *= 2;
    c->nfeat = xrealloc(c->nfeat, ncap);
    memset(c->nfeat + c->nfeat_cap, 0, ncap - c->nfeat_cap);
    c->nfeat_cap = ncap;
  }
  int was = c->nfeat[iid] > 0, now = ncats + ntags > 0;
  int nf = ncats + ntags;
  c->nfeat[iid] = (uint8_t)(nf > 255 ? 255 : nf);
  if (now && !was) c->nitems++;
  if (!now && was) c->nitems--;
}

double content_idf(const content_index *c, const content_field *f, uint32_t id) {
  double df = f->post[id].n;
  return log(1.0 + (double)(c->nitems ? c->nitems : 1) / (df > 0 ? df : 1));
}

const posting *content_category_items(const content_index *c, uint32_t cat) {
  if (cat >= c->cats.post_cap) return NULL;
  return &c->cats.post[cat];
}


void content_scratch_init(content_scratch *s) {
  stampmap_init(&s->idx);
  s->hits = NULL;
  s->cap = 0;
}

void content_scratch_release(content_scratch *s) {
  stampmap_release(&s->idx);
  free(s->hits);
  content_scratch_init(s);
}

static void accumulate(const content_index *c, const content_field *f, const uint32_t *ids, int n, uint32_t self,
                       size_t scan_cap, content_scratch *scr, size_t *nh, double *qnorm) {
  for (int i = 0; i < n; i++) {
    if (ids[i] >= f->post_cap) continue;
    const posting *p = &f->post[ids[i]];
    double idf = content_idf(c, f, ids[i]);
    float add = (float)(idf * idf);
    *qnorm += idf * idf;
    size_t scanned = 0;
    for (uint32_t k = p->n; k-- > 0 && scanned < scan_cap; scanned++) {
      uint32_t iid = p->items[k];
      if (iid == self) continue;
      int created;
      uint16_t *slot = stampmap_put(&scr->idx, iid, (uint16_t)*nh, &created);
      if (created) {
        if (*nh == scr->cap) {
          scr->cap = scr->cap ? scr->cap * 2 : 256;
          scr->hits = xrealloc(scr->hits, scr->cap * sizeof *scr->hits);
        }
        scr->hits[*nh] = (content_hit){.iid = iid, .score = 0};
        (*nh)++;
      }
      scr->hits[*slot].score += add;
    }
  }
}

size_t content_similar(const content_index *c, const uint32_t *cats, int ncats, const uint32_t *tags,
                       int ntags, uint32_t self, size_t k, size_t scan_cap, content_scratch *scr, content_hit *out) {
  content_scratch tmp;
  if (!scr) content_scratch_init(scr = &tmp);
  /* the hits are indexed by 16-bit positions (stampmap): a scan stays below that */
  size_t ids = (size_t)(ncats > 0 ? ncats : 0) + (size_t)(ntags > 0 ? ntags : 0);
  if (ids && scan_cap > STAMPMAP_MAX_VAL / ids) scan_cap = STAMPMAP_MAX_VAL / ids;
  stampmap_clear(&scr->idx);
  size_t nh = 0;
  double qnorm = 0;
  accumulate(c, &c->cats, cats, ncats, self, scan_cap, scr, &nh, &qnorm);
  accumulate(c, &c->tags, tags, ntags, self, scan_cap, scr, &nh, &qnorm);
  content_hit *hits = scr->hits;
  double qn = sqrt(qnorm > 0 ? qnorm : 1);
  for (size_t i = 0; i < nh; i++) {
    uint32_t iid = hits[i].iid;
    double nf = iid < c->nfeat_cap && c->nfeat[iid] ? c->nfeat[iid] : 1;
    hits[i].score = (float)(hits[i].score / (qn * sqrt(nf) * (qn / sqrt(ncats + ntags > 0 ? ncats + ntags : 1))));
  }
  /* top k by a bounded heap, then sort just those */
  pop_list top;
  pop_list_init(&top, (uint32_t)k);
  for (size_t i = 0; i < nh; i++) pop_list_offer(&top, hits[i].iid, hits[i].score);
  pop_list_sort(&top);
  size_t m = top.n;
  for (size_t i = 0; i < m; i++) out[i] = (content_hit){.iid = top.e[i].iid, .score = top.e[i].score};
  pop_list_release(&top);
  if (scr == &tmp) content_scratch_release(&tmp);
  return m;
}

size_t content_memory(const content_index *c) {
  size_t n = strmap_memory(&c->cats.names) + strmap_memory(&c->tags.names) + c->nfeat_cap;
  for (size_t i = 0; i < c->cats.post_cap; i++) n += c->cats.post[i].cap * 4 + sizeof(posting);
  for (size_t i = 0; i < c->tags.post_cap; i++) n += c->tags.post[i].cap * 4 + sizeof(posting);
  return n;
}
