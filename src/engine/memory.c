/* memory.c — the process's memory by part (engine_memory): a walk over every
 * profile, item and list, each read under its lock, beside malloc's own
 * figures (mallinfo2) and the resident set size; and a thread of low priority
 * that walks again when a reader (GET /metrics) finds the last walk old
 * (engine_memory_latest), so that no request waits for a walk. */
#include <malloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/engine_int.h"
#include "model/ease.h"
#include "model/ials.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

const char *const recd_memory_part_names[RECD_MEM_NPARTS] = {
    [RECD_MEM_PROFILES] = "profiles",      [RECD_MEM_RINGS] = "recent_rings",
    [RECD_MEM_SEEN] = "seen_sets",         [RECD_MEM_ITEMS] = "items",
    [RECD_MEM_MEMOS] = "content_memos",    [RECD_MEM_COVIS] = "covisitation",
    [RECD_MEM_CONTENT] = "content_index",  [RECD_MEM_IDS] = "id_maps",
    [RECD_MEM_TRENDING] = "trending",      [RECD_MEM_MODELS] = "models",
    [RECD_MEM_SQLITE] = "sqlite_cache",    [RECD_MEM_HEAP_OTHER] = "heap_other",
    [RECD_MEM_HEAP_FREE] = "heap_free",    [RECD_MEM_NON_HEAP] = "non_heap",
};

static uint64_t model_bytes(const model_set *m) {
  if (!m) return 0;
  return sizeof *m + ials_memory(m->ials) + (m->ease ? ease_memory(m->ease) : 0) + m->nscan * sizeof *m->scan;
}

/* the walk stops early once the engine is stopping (its result is then dropped) */
#define STOP_CHECK_EVERY 65536

void engine_memory(recd_engine *e, recd_memory *m) {
  int64_t t0 = clock_mono_ns();
  memset(m, 0, sizeof *m);
  uint64_t *b = m->bytes;

  pthread_rwlock_rdlock(&e->users_lock);
  size_t nu = strmap_count(&e->users);
  b[RECD_MEM_IDS] += strmap_memory(&e->users);
  pthread_rwlock_unlock(&e->users_lock);
  b[RECD_MEM_IDS] += ptrvec_memory(&e->uprof);
  for (size_t u = 0; u < nu; u++) {
    if (u % STOP_CHECK_EVERY == 0 && atomic_load(&e->mem_stop)) return;
    userprof *p = ptrvec_get(&e->uprof, (uint32_t)u);
    if (!p) continue; /* interned by the store stage, not applied yet */
    pthread_mutex_t *l = engine__ulock(e, (uint32_t)u);
    pthread_mutex_lock(l);
    userprof_mem um = userprof_memory(p, e->ntypes);
    pthread_mutex_unlock(l);
    b[RECD_MEM_PROFILES] += um.profile;
    b[RECD_MEM_RINGS] += um.ring;
    b[RECD_MEM_SEEN] += um.seen;
  }

  pthread_rwlock_rdlock(&e->items_lock);
  size_t ni = strmap_count(&e->items);
  b[RECD_MEM_IDS] += strmap_memory(&e->items);
  pthread_rwlock_unlock(&e->items_lock);
  b[RECD_MEM_IDS] += ptrvec_memory(&e->istats) + ptrvec_memory(&e->covis) + ptrvec_memory(&e->irule);
  size_t memo = engine__memo_bytes();
  for (size_t i = 0; i < ni; i++) {
    if (i % STOP_CHECK_EVERY == 0 && atomic_load(&e->mem_stop)) return;
    pthread_mutex_t *l = engine__ilock(e, (uint32_t)i);
    pthread_mutex_lock(l);
    const itemstats *s = ptrvec_get(&e->istats, (uint32_t)i);
    const covis_list *cl = ptrvec_get(&e->covis, (uint32_t)i);
    if (s) {
      b[RECD_MEM_ITEMS] += itemstats_memory(s, e->ntypes);
      if (s->memo) b[RECD_MEM_MEMOS] += memo;
    }
    if (cl) b[RECD_MEM_COVIS] += covis_memory(cl);
    pthread_mutex_unlock(l);
  }

  pthread_rwlock_rdlock(&e->content_lock);
  b[RECD_MEM_CONTENT] = content_memory(&e->content);
  pthread_rwlock_unlock(&e->content_lock);
  pthread_mutex_lock(&e->trend_lock);
  b[RECD_MEM_TRENDING] = trending_memory(e->trend);
  pthread_mutex_unlock(&e->trend_lock);
  pthread_mutex_lock(&e->models_lock);
  b[RECD_MEM_MODELS] = model_bytes(e->models) + (e->prev_models != e->models ? model_bytes(e->prev_models) : 0);
  pthread_mutex_unlock(&e->models_lock);
  b[RECD_MEM_SQLITE] = e->st ? store_cache_bytes(e->st) : 0;

  struct mallinfo2 mi = mallinfo2();
  uint64_t named = 0;
  for (int k = 0; k < RECD_MEM_HEAP_OTHER; k++) named += b[k];
  uint64_t in_use = (uint64_t)mi.uordblks + mi.hblkhd;
  uint64_t heap = (uint64_t)mi.arena + mi.hblkhd; /* its arenas and its own mappings */
  b[RECD_MEM_HEAP_OTHER] = in_use > named ? in_use - named : 0;
  b[RECD_MEM_HEAP_FREE] = mi.fordblks;
  m->rss = mem_rss_bytes();
  b[RECD_MEM_NON_HEAP] = m->rss > heap ? m->rss - heap : 0;
  m->measured_ms = clock_now_ms();
  m->measured_ns = clock_mono_ns();
  m->walk_s = (double)(m->measured_ns - t0) / 1e9;
}

static void *memory_main(void *arg) {
  recd_engine *e = arg;
  pthread_setname_np(pthread_self(), "recd-memory");
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
  pthread_mutex_lock(&e->mem_lock);
  for (;;) {
    while (!e->mem_want && !atomic_load(&e->mem_stop)) pthread_cond_wait(&e->mem_cond, &e->mem_lock);
    if (atomic_load(&e->mem_stop)) break;
    e->mem_want = 0;
    pthread_mutex_unlock(&e->mem_lock);
    recd_memory m;
    engine_memory(e, &m);
    pthread_mutex_lock(&e->mem_lock);
    if (!atomic_load(&e->mem_stop)) e->mem_last = m;
  }
  pthread_mutex_unlock(&e->mem_lock);
  return NULL;
}

void engine_memory_latest(recd_engine *e, int64_t max_age_ms, recd_memory *m) {
  pthread_mutex_lock(&e->mem_lock);
  *m = e->mem_last;
  int stale = !m->measured_ns || clock_mono_ns() - m->measured_ns > max_age_ms * 1000000;
  if (stale && !atomic_load(&e->mem_stop)) {
    if (!e->mem_started) { /* once: -1 if it could not start */
      int rc = pthread_create(&e->mem_thread, NULL, memory_main, e);
      if (rc) log_warn("memory: cannot start the thread that measures it: %s", strerror(rc));
      e->mem_started = rc ? -1 : 1;
    }
    e->mem_want = 1;
    pthread_cond_signal(&e->mem_cond);
  }
  pthread_mutex_unlock(&e->mem_lock);
}

void engine__memory_stop(recd_engine *e) {
  pthread_mutex_lock(&e->mem_lock);
  atomic_store(&e->mem_stop, 1);
  pthread_cond_broadcast(&e->mem_cond);
  int started = e->mem_started == 1;
  e->mem_started = -1;
  pthread_mutex_unlock(&e->mem_lock);
  if (started) pthread_join(e->mem_thread, NULL);
}
