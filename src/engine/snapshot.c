/* snapshot.c — the live state on disk, so a restart loads it and replays only
 * the log after it, instead of the whole log.
 *
 * File DATA/state.snap (written as state.snap.tmp, fsynced, renamed; the file
 * it replaced stays as state.snap.old, and the next snapshot is written over
 * it, see open_file; a background snapshot writes straight to the disk):
 *   header  magic "RECDSNP1", u64 seq (last event applied), u64 config
 *           fingerprint, i64 engine clock, u64 users, u64 items, u64 events,
 *           u64 events by type [RECD_MAX_TYPES]
 *   users   per uid: u8 present, then the profile
 *   items   per iid: the item's live statistics (not the catalog: that is in
 *           the database), then its co-visitation list
 *   trailer u64 hash of everything before it, magic "RECDEND1"
 *
 * Invariants:
 *  1. A snapshot is taken only between two rounds of the writer's apply stage,
 *     so it holds exactly the events up to `seq`, all applied. The store stage
 *     may have written (not applied) the next rounds: their new users and
 *     items are in the id maps already, but the header counts only the ids
 *     interned by the rounds up to `seq` (each round notes the counts after
 *     its writes, the apply stage keeps those of the last round it applied),
 *     so the later ids are not in the file; loading interns them from the
 *     database, and the log after `seq` is replayed onto that. (Counting them
 *     too wrote their empty records: a file that was not the state at `seq`,
 *     caught by a unit test on one CPU.) The snapshot reads no id map.
 *  2. Periodic snapshots are written by a thread of their own while writes go
 *     on (no fork: copying the page tables of a 2 GB process and then every
 *     page the writer touched took longer than the snapshot itself, and
 *     stalled the writer). The thread serialises one record at a time (a
 *     user's profile; an item's statistics with its co-visitation list) under
 *     that record's stripe lock, which every mutation of it also holds. Before
 *     the apply stage changes a record the thread has not written yet, it
 *     writes the record as it is into a `kept` slot first (engine__keep_user,
 *     engine__keep_item; creating one counts as changing it), and the thread
 *     uses that instead: the file holds every record as of `seq`. A mark per
 *     record (set under its lock by whichever comes first) says which it was.
 *     Users and items interned after `seq` have ids past the counts in the
 *     header and are not written.
 *  3. Loading verifies the size, both magics and the hash of the whole file
 *     before changing any state, and refuses a snapshot whose fingerprint (the
 *     options that shape derived state) differs from the current config; a
 *     refused snapshot leaves the caller's replay at event 0. Two threads
 *     parse the records (see engine__snapshot_load).
 */
#include <aio.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine_int.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fileio.h"
#include "util/log.h"

#define SNAP_MAGIC "RECDSNP1"
#define SNAP_END "RECDEND1"

uint64_t engine__fingerprint(const recd_engine *e) {
  const recd_config *c = &e->cfg;
  uint64_t h = 1469598103934665603ULL;
  for (int i = 0; i < e->ntypes; i++) {
    h = fileio_hash(h, (const unsigned char *)e->types[i].name, strlen(e->types[i].name));
    uint64_t w = (uint64_t)(e->types[i].weight * 1000);
    h = fileio_hash(h, &w, sizeof w);
  }
  int64_t v[] = {c->recent_items,        c->popularity_half_life_ms, c->affinity_half_life_ms,
                 c->engagement_half_life_ms, c->covis_max_neighbors, c->covis_window,
                 c->covis_max_gap_ms,    c->covis_half_life_ms,      e->ntypes};
  return fileio_hash(h, v, sizeof v);
}

/* ---- writing ---- */

/* Bytes written between two waits for the disk. A snapshot is as big as the
 * state (~0.9-1.3 GB at 1M users); written in one go, its writeback at the
 * final fsync queues ahead of the database's commits for seconds. In steps of
 * this size, a commit waits behind at most one step (~3 ms at 350 MB/s). 8 MiB
 * steps put single-event writes' p99 at 14-26 ms while a snapshot ran at full
 * size, 1 MiB steps at 8-9 ms (stop 11).
 * A snapshot written while nothing else commits (shutdown, the end of an
 * import: `ahead`) starts each step's writeback when the step is written and
 * waits for it only after the next one: the disk writes one step while the
 * next is serialised: a 1.2 GB state took 1.3-1.4 s instead of 1.9-2.0 s
 * (stop 19; 3.4-3.6 s instead of 3.5-4.3 s in runs where the disk was still
 * discarding the replaced file).
 * A background snapshot writes its steps with O_DIRECT where the file system
 * has it: no copy into the page cache (60% of the thread's CPU on this VM:
 * 4.3-4.5 s of CPU and 10-11 s under a sustained batch load became 1.6-2.0 s
 * and 5-6 s, stop 20), and no dirty pages to write back; the steps above are
 * for the rest (the last, partial block, or a file system without it). A
 * closing snapshot stays in the page cache: the restart that follows reads it
 * from there. Either way one step is in flight on AIO's helper thread while
 * the next is serialised (snap_io). */
#define SNAP_WRITEBACK_STEP (1u << 20)

/* A snapshot never frees the file it replaces (open_file): renaming over the
 * 1.2 GB file freed its blocks in one go, which held the database's commits
 * behind it for up to 57 ms on a disk mounted with `discard` (stop 20). The
 * one file a crash can leave to remove goes in truncations of this many
 * bytes, SNAP_FREE_PAUSE_US apart (fileio_remove_gently). */
#define SNAP_FREE_STEP (8u << 20)
#define SNAP_FREE_PAUSE_US 5000

/* the background writer's nice value */
#define SNAP_NICE 10

/* Bytes on their way to the file (fd >= 0: flushed when full, hashed as they
 * go), or one record in memory (fd < 0: grows). */
typedef struct {
  int fd;
  unsigned char *buf;
  size_t n, cap;
  uint64_t hash, total;
  uint64_t started, synced; /* writeback started for [0, started), done for [0, synced) */
  int ahead;                /* wait for a step's writeback after the next one's start */
  int direct;               /* fd writes straight to the disk (O_DIRECT; io is set) */
  int err;
  struct snap_io *io;       /* a write in flight (files only): direct, or to the page cache */
} wbuf;

/* A write in flight while the next step is serialised into the other
 * buffer. POSIX AIO: glibc runs it on a helper thread. Direct writes: the
 * thread waited ~0.76 ms per 1 MiB write, ~0.75 s of a 1.2 GB snapshot (stop
 * 20). Writes to the page cache (closing snapshots): the kernel's copy into
 * the cache was half of a closing snapshot's time on this VM and serialising
 * a third (perf, stop 21); the helper thread copies one step while the
 * writer serialises the next. */
typedef struct snap_io {
  struct aiocb cb;
  unsigned char *busy;      /* the buffer being written; the other is wbuf.buf */
  int inflight;
} snap_io;

/* the alignment of direct writes' buffer, offsets and lengths */
#define SNAP_DIRECT_ALIGN 4096

/* on to the page cache: a file system without direct I/O, or the last, partial block
 * (if O_DIRECT stays on, the write that follows fails, and so the snapshot) */
static void w_buffered(wbuf *w) {
  if (w->direct) (void)fileio_direct(w->fd, 0);
  w->direct = 0;
}

/* wait for the write in flight; one that failed (a file system that takes
 * O_DIRECT but not these writes) is written again through the page cache */
static void w_wait(wbuf *w) {
  snap_io *io = w->io;
  if (!io || !io->inflight) return;
  const struct aiocb *list[1] = {&io->cb};
  int e;
  while ((e = aio_error(&io->cb)) == EINPROGRESS) aio_suspend(list, 1, NULL);
  ssize_t r = aio_return(&io->cb);
  io->inflight = 0;
  if (e || r != (ssize_t)io->cb.aio_nbytes) {
    w_buffered(w);
    if (!w->err) w->err = fileio_pwrite_all(w->fd, io->busy, io->cb.aio_nbytes, (uint64_t)io->cb.aio_offset);
  }
}

/* start writing the full buffer (direct, or to the page cache); the other
 * one takes the next step. 0: not started (an error) */
static int w_start(wbuf *w) {
  snap_io *io = w->io;
  w_wait(w);
  if (w->err) return 0;
  io->cb = (struct aiocb){.aio_fildes = w->fd, .aio_buf = w->buf, .aio_nbytes = w->n, .aio_offset = (off_t)w->total};
  if (aio_write(&io->cb)) return 0;
  io->inflight = 1;
  unsigned char *b = io->busy;
  io->busy = w->buf;
  w->buf = b;
  return 1;
}

static void w_flush(wbuf *w) {
  /* hash in whole 8-byte words: flushes happen at multiples of 8 except the last */
  w->hash = fileio_hash(w->hash, w->buf, w->n);
  /* handed to the helper thread; else (no aio, the last partial block of a
   * direct file, an error) written here through the page cache */
  int sent = w->io && !(w->direct && w->n % SNAP_DIRECT_ALIGN) && w_start(w);
  if (!sent) {
    w_wait(w);
    w_buffered(w);
    if (!w->err) w->err = fileio_pwrite_all(w->fd, w->buf, w->n, w->total);
  }
  w->total += w->n;
  w->n = 0;
  if (w->direct) {
    w->started = w->synced = w->total;
    return;
  }
  /* the page cache's writeback, in steps, for the bytes that are in it */
  uint64_t landed = w->total - (w->io && w->io->inflight ? (uint64_t)w->io->cb.aio_nbytes : 0);
  if (w->err || landed - w->started < SNAP_WRITEBACK_STEP) return;
  if (w->ahead) {
    w->err = fileio_writeback_start(w->fd, w->started, landed - w->started);
    if (!w->err && w->started > w->synced) w->err = fileio_writeback(w->fd, w->synced, w->started - w->synced);
    w->synced = w->started;
  } else {
    w->err = fileio_writeback(w->fd, w->synced, landed - w->synced);
    w->synced = landed;
  }
  w->started = landed;
}

static void w_put_slow(wbuf *w, const void *p, size_t n) {
  if (w->fd < 0 && w->n + n > w->cap) {
    while (w->n + n > w->cap) w->cap = w->cap ? 2 * w->cap : 256;
    w->buf = xrealloc(w->buf, w->cap);
  }
  const unsigned char *s = p;
  while (n) {
    size_t k = w->cap - w->n < n ? w->cap - w->n : n;
    memcpy(w->buf + w->n, s, k);
    w->n += k;
    s += k;
    n -= k;
    if (w->n == w->cap && w->fd >= 0) w_flush(w);
  }
}

/* the common case inline: a field that fits with room to spare (a copy of
 * a known size, not a call; a snapshot puts ~10 fields per record, and the
 * calls and byte-wise copies were a fifth of writing one at close) */
static inline void w_put(wbuf *w, const void *p, size_t n) {
  if (w->n + n < w->cap) {
    memcpy(w->buf + w->n, p, n);
    w->n += n;
    return;
  }
  w_put_slow(w, p, n);
}

#define PUT(w, x) w_put((w), &(x), sizeof(x))

static void put_user(wbuf *w, const userprof *p, int ntypes) {
  PUT(w, p->first_ts);
  PUT(w, p->last_ts);
  PUT(w, p->eng_t);
  PUT(w, p->aff_t);
  PUT(w, p->eng_score);
  PUT(w, p->total);
  PUT(w, p->ring_len);
  PUT(w, p->naff);
  for (int i = p->ring_len - 1; i >= 0; i--) { /* oldest first */
    const recent_ev *r = userprof_recent(p, i);
    PUT(w, r->ts);
    PUT(w, r->iid);
    PUT(w, r->type);
  }
  for (int i = 0; i < p->naff; i++) PUT(w, p->aff[i]);
  uint32_t nseen = p->seen.count;
  PUT(w, nseen);
  for (uint32_t i = 0; i < p->seen.cap; i++)
    if (p->seen.keys[i] != U32MAP_EMPTY) {
      PUT(w, p->seen.keys[i]);
      PUT(w, p->seen.vals[i]);
    }
  uint16_t sl = p->session ? (uint16_t)strlen(p->session) : 0xffff;
  PUT(w, sl);
  if (p->session) w_put(w, p->session, sl);
  PUT(w, p->session_start);
  PUT(w, p->session_last);
  PUT(w, p->session_events);
  PUT(w, p->sessions);
  w_put(w, p->counts, (size_t)ntypes * sizeof(uint32_t));
}

static void put_item(wbuf *w, const itemstats *s, const covis_list *l, int ntypes) {
  PUT(w, s->first_ts);
  PUT(w, s->last_ts);
  PUT(w, s->pop_t);
  PUT(w, s->pop);
  PUT(w, s->weight_total);
  w_put(w, s->bucket_day, sizeof s->bucket_day);
  w_put(w, s->bucket, sizeof s->bucket);
  w_put(w, s->counts, (size_t)ntypes * sizeof(uint32_t));
  uint16_t n = l ? l->n : 0;
  PUT(w, n);
  if (l) {
    PUT(w, l->t0);
    PUT(w, l->norm);
    PUT(w, l->floor);
    w_put(w, l->e, (size_t)l->n * sizeof *l->e);
  }
}

/* one user's record: present flag, then the profile */
static void user_record(wbuf *w, recd_engine *e, uint32_t uid) {
  userprof *p = ptrvec_get(&e->uprof, uid);
  uint8_t present = p != NULL;
  PUT(w, present);
  if (p) put_user(w, p, e->ntypes);
}

/* one item's record: statistics (zeroes if none) and co-visitation list */
static void item_record(wbuf *w, recd_engine *e, uint32_t iid) {
  static const itemstats empty;
  itemstats *s = ptrvec_get(&e->istats, iid);
  put_item(w, s ? s : &empty, ptrvec_get(&e->covis, iid), e->ntypes);
}

static void record(wbuf *w, recd_engine *e, uint32_t id, int user) {
  if (user) user_record(w, e, id);
  else item_record(w, e, id);
}

/* what the header says: the state as of `seq` */
typedef struct {
  uint64_t seq, fp, nusers, nitems, events, by_type[RECD_MAX_TYPES];
  int64_t now;
} snap_head;

static void head_now(recd_engine *e, uint64_t seq, uint64_t nusers, uint64_t nitems, snap_head *h) {
  h->seq = seq;
  h->fp = engine__fingerprint(e);
  h->now = atomic_load(&e->now_ms);
  h->nusers = nusers;
  h->nitems = nitems;
  h->events = atomic_load(&e->n_events);
  for (int i = 0; i < RECD_MAX_TYPES; i++) h->by_type[i] = atomic_load(&e->by_type[i]);
}

static void put_head(wbuf *w, const snap_head *h) {
  w_put(w, SNAP_MAGIC, 8);
  PUT(w, h->seq);
  PUT(w, h->fp);
  PUT(w, h->now);
  PUT(w, h->nusers);
  PUT(w, h->nitems);
  PUT(w, h->events);
  for (int i = 0; i < RECD_MAX_TYPES; i++) PUT(w, h->by_type[i]);
}

/* pad to 8 so the hash covers whole words, then the trailer; commits the file */
static int put_tail(wbuf *w, char *tmp, const char *path, const char *old) {
  static const unsigned char zero[8];
  w_put(w, zero, (8 - (w->total + w->n) % 8) % 8);
  w_flush(w);
  uint64_t h = w->hash;
  w_put(w, &h, 8);
  w_put(w, SNAP_END, 8);
  w_flush(w);
  w_wait(w);
  free(w->buf);
  if (w->io) free(w->io->busy);
  free(w->io);
  /* the file written over may have been longer */
  if (!w->err && ftruncate(w->fd, (off_t)w->total)) w->err = -errno;
  /* the file this one replaces stays, as the next one's (open_file) */
  if (!w->err) (void)link(path, old);
  return fileio_commit(w->fd, tmp, path, w->err);
}

/* state.snap.tmp, to write a snapshot into: the file the last snapshot
 * replaced (state.snap.old), renamed and written over in place. Its blocks
 * are reused, so no snapshot allocates or frees a gigabyte of them (put_tail
 * keeps the replaced file as the next .old); the price is a second file of
 * the state's size in the data dir. A crash can leave both a .tmp and a .old:
 * the .tmp is reused and the .old removed in steps (or only unlinked when it
 * is a second name of state.snap: a crash between put_tail's link and its
 * rename). */
static int open_file(const char *path, const char *old, wbuf *w, char **tmp, const atomic_int *hurry) {
  *w = (wbuf){.fd = -1, .cap = SNAP_WRITEBACK_STEP, .hash = 0x5eed};
  *tmp = fileio_tmp_path(path);
  struct stat st;
  if (!lstat(old, &st)) {
    if (st.st_nlink > 1 || !access(*tmp, F_OK) || rename(old, *tmp))
      (void)fileio_remove_gently(old, hurry ? SNAP_FREE_STEP : UINT64_MAX, hurry ? SNAP_FREE_PAUSE_US : 0, hurry);
  }
  int fd = open(*tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = -errno;
    free(*tmp);
    return err;
  }
  w->fd = fd;
  w->buf = aligned_alloc(SNAP_DIRECT_ALIGN, w->cap);
  if (!w->buf) return fileio_commit(fd, *tmp, path, RECD_ENOMEM);
  return 0;
}

/* writes handed to a helper thread (snap_io) from now on, with a second
 * buffer for the one in flight, and O_DIRECT if `direct` and the file system
 * takes it; nothing changes if either fails */
static void w_async(wbuf *w, int direct) {
  snap_io *io = calloc(1, sizeof *io);
  if (io && (io->busy = aligned_alloc(SNAP_DIRECT_ALIGN, w->cap)) && (!direct || !fileio_direct(w->fd, 1))) {
    w->io = io;
    w->direct = direct;
    return;
  }
  if (io) free(io->busy);
  free(io);
}

static void snap_path(const recd_engine *e, char *buf, size_t len) { snprintf(buf, len, "%s/state.snap", e->cfg.data); }


/* ---- the background snapshot (invariant 2) ---- */

/* a kept record: serialised straight after its length */
typedef struct {
  size_t len;
  unsigned char b[];
} kept_rec;

/* Kept records live in chunks of their own, mapped for one snapshot and
 * unmapped when it ends. Under a heavy write load most records are kept
 * (~0.8 GB at the full state): from malloc, in the apply threads' arenas,
 * they stayed there as free memory after the snapshot, fragmented by the
 * allocations made beside them (RSS 1.3 -> 3.1 GB after 30 s of batches,
 * against 2.3 GB without snapshots; stop 21). */
#define KEEP_CHUNK (8u << 20)

typedef struct keep_chunk {
  struct keep_chunk *next;
  size_t used, cap; /* bytes of the mapping, this header included */
} keep_chunk;

struct snap_run {
  snap_marks m;                /* first: the engine points at it (1 = written, or kept in ukept/ikept) */
  recd_engine *e;
  pthread_t thread;
  char path[1100];
  snap_head h;
  int64_t started_ns;
  uint64_t apply_ns;           /* the engine's apply_ns at its event */
  kept_rec **ukept, **ikept;
  pthread_mutex_t keep_lock;   /* the chunks, filled by the apply threads */
  keep_chunk *chunks;
  _Atomic uint64_t nkept;
  _Atomic int done, abort;     /* the thread is finished; told to stop */
  int rc;
  double cpu_s;
};

/* the apply stage looks at the snapshot at its next ticks: now, not at its
 * next round (writes may be held for it, see snapshot_max_replay) */
static void wake_apply_stage(recd_engine *e) {
  pthread_mutex_lock(&e->a_lock);
  e->ticks_due = 1;
  pthread_cond_broadcast(&e->a_cond);
  pthread_mutex_unlock(&e->a_lock);
}

/* n bytes (16-aligned) in the snapshot's chunks */
static void *keep_alloc(snap_run *s, size_t n) {
  n = (n + 15) & ~(size_t)15;
  size_t head = (sizeof(keep_chunk) + 15) & ~(size_t)15;
  pthread_mutex_lock(&s->keep_lock);
  keep_chunk *c = s->chunks;
  if (!c || c->cap - c->used < n) {
    size_t cap = head + n > KEEP_CHUNK ? head + n : KEEP_CHUNK;
    void *m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      log_error("snapshot: out of memory keeping a record (%zu bytes)", cap);
      abort(); /* as xmalloc does */
    }
    c = m;
    *c = (keep_chunk){.next = s->chunks, .used = head, .cap = cap};
    s->chunks = c;
  }
  void *p = (unsigned char *)c + c->used;
  c->used += n;
  pthread_mutex_unlock(&s->keep_lock);
  return p;
}

/* each thread's buffer to serialise a record into before it is kept: one per
 * thread for its life, freed when it exits */
typedef struct {
  unsigned char *buf;
  size_t cap;
} keep_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
  keep_scratch *k = p;
  free(k->buf);
  free(k);
}

static void scratch_init(void) { (void)pthread_key_create(&scratch_key, scratch_free); }

void engine__snap_keep(recd_engine *e, uint32_t id, int user) {
  snap_run *s = (snap_run *)e->snap;
  pthread_once(&scratch_once, scratch_init);
  keep_scratch *ks = pthread_getspecific(scratch_key);
  if (!ks) {
    ks = xcalloc(1, sizeof *ks);
    (void)pthread_setspecific(scratch_key, ks);
  }
  wbuf r = {.fd = -1, .buf = ks->buf, .cap = ks->cap};
  record(&r, e, id, user);
  ks->buf = r.buf;
  ks->cap = r.cap;
  kept_rec *k = keep_alloc(s, sizeof *k + r.n);
  k->len = r.n;
  memcpy(k->b, r.buf, r.n);
  (user ? s->ukept : s->ikept)[id] = k;
  (user ? s->m.umark : s->m.imark)[id] = 1;
  atomic_fetch_add_explicit(&s->nkept, 1, memory_order_relaxed);
}

/* a test's way to make the snapshot slow enough to overlap many writes:
 * RECD_TEST_SNAPSHOT_PAUSE_US, a pause after every 16 records */
static long test_pause_us(void) {
  const char *v = getenv("RECD_TEST_SNAPSHOT_PAUSE_US");
  return v ? atol(v) : 0;
}

static int snap_aborted(snap_run *s) { return atomic_load(&s->abort); }

/* record `id` into w: the kept copy, or the live record under its lock */
static void take(snap_run *s, wbuf *w, wbuf *rec, uint32_t id, int user) {
  recd_engine *e = s->e;
  pthread_mutex_t *l = user ? engine__ulock(e, id) : engine__ilock(e, id);
  uint8_t *mark = user ? s->m.umark : s->m.imark;
  kept_rec **kept = user ? s->ukept : s->ikept;
  kept_rec *k = NULL;
  rec->n = 0;
  pthread_mutex_lock(l);
  if (mark[id]) {
    k = kept[id];
    kept[id] = NULL;
  } else {
    record(rec, e, id, user);
    mark[id] = 1;
  }
  pthread_mutex_unlock(l);
  if (k) {
    w_put(w, k->b, k->len); /* its chunk goes with the snapshot */
  } else {
    w_put(w, rec->buf, rec->n);
  }
}

/* The file of the state as of h: with s, by the background thread (records
 * taken under their locks, kept copies first; it stops early when s->abort is
 * set); without, on a thread that has the state to itself (shutdown, import's
 * close): no locks. */
static int write_file(recd_engine *e, const char *path, const snap_head *h, snap_run *s) {
  char *tmp, old[1110];
  snprintf(old, sizeof old, "%s.old", path);
  wbuf w, rec = {.fd = -1};
  /* in the background, a crash's leftover goes gently (stopped by a shutdown); at close nothing commits beside it */
  int rc = open_file(path, old, &w, &tmp, s ? &s->abort : NULL);
  if (rc) return rc;
  w.ahead = !s;
  if (s) w_async(&w, 1); /* in the background: direct, else as at close */
  if (!w.io) w_async(&w, 0);
  put_head(&w, h);
  long pause = s ? test_pause_us() : 0;
  uint64_t n = 0, all = h->nusers + h->nitems;
  for (; n < all && !(s && snap_aborted(s)); n++) {
    int user = n < h->nusers;
    uint32_t id = (uint32_t)(user ? n : n - h->nusers);
    if (s) take(s, &w, &rec, id, user);
    else record(&w, e, id, user);
    if (pause && n % 16 == 15) usleep((useconds_t)pause);
  }
  free(rec.buf);
  if (n < all && !w.err) w.err = RECD_ECANCELED;
  return put_tail(&w, tmp, path, old);
}

int engine__snapshot_save(recd_engine *e) {
  char path[1100];
  snap_path(e, path, sizeof path);
  int64_t t0 = clock_mono_ns();
  snap_head h;
  head_now(e, e->next_seq, strmap_count(&e->users), strmap_count(&e->items), &h);
  int rc = write_file(e, path, &h, NULL);
  if (rc) log_error("snapshot: writing %s failed: %s", path, recd_strerror(rc));
  else
    log_info("snapshot: state at event %llu written to %s in %.2f s", (unsigned long long)e->next_seq, path,
             (clock_mono_ns() - t0) / 1e9);
  return rc;
}

static void *snap_main(void *arg) {
  snap_run *s = arg;
  pthread_setname_np(pthread_self(), "recd-snapshot");
  /* below the server's threads: requests and writes come first */
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAP_NICE);
  s->rc = write_file(s->e, s->path, &s->h, s);
  struct timespec cpu;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
  s->cpu_s = (double)cpu.tv_sec + cpu.tv_nsec / 1e9;
  atomic_store(&s->done, 1);
  wake_apply_stage(s->e);
  return NULL;
}

static void snapshot_free(snap_run *s) {
  for (keep_chunk *c = s->chunks, *next; c; c = next) {
    next = c->next;
    munmap(c, c->cap);
  }
  pthread_mutex_destroy(&s->keep_lock);
  free(s->m.umark);
  free(s->m.imark);
  free(s->ukept);
  free(s->ikept);
  free(s);
}

/* apply stage, between rounds */
int engine__snapshot_start(recd_engine *e, uint64_t seq, uint64_t nusers, uint64_t nitems) {
  snap_run *s = xcalloc(1, sizeof *s);
  s->e = e;
  snap_path(e, s->path, sizeof s->path);
  head_now(e, seq, nusers, nitems, &s->h);
  s->started_ns = clock_mono_ns();
  s->apply_ns = atomic_load(&e->apply_ns);
  s->m.nusers = s->h.nusers;
  s->m.nitems = s->h.nitems;
  s->m.umark = xcalloc(s->h.nusers ? s->h.nusers : 1, 1);
  s->m.imark = xcalloc(s->h.nitems ? s->h.nitems : 1, 1);
  s->ukept = xcalloc(s->h.nusers ? s->h.nusers : 1, sizeof *s->ukept);
  s->ikept = xcalloc(s->h.nitems ? s->h.nitems : 1, sizeof *s->ikept);
  pthread_mutex_init(&s->keep_lock, NULL);
  e->snap = &s->m; /* before the next round: from now on a change keeps the record first */
  int rc = pthread_create(&s->thread, NULL, snap_main, s);
  if (rc) {
    e->snap = NULL;
    snapshot_free(s);
    return -rc;
  }
  log_info("snapshot: writing the state at event %llu in the background", (unsigned long long)seq);
  return 0;
}

int engine__snapshot_done(const recd_engine *e) {
  const snap_run *s = (const snap_run *)e->snap;
  return s && atomic_load(&s->done);
}

void engine__snapshot_end(recd_engine *e, int abort) {
  snap_run *s = (snap_run *)e->snap;
  if (abort) atomic_store(&s->abort, 1);
  pthread_join(s->thread, NULL);
  e->snap = NULL;
  int64_t took_ns = clock_mono_ns() - s->started_ns;
  if (!s->rc) {
    e->last_snap_seq = s->h.seq;
    atomic_store(&e->snap_apply_ns, s->apply_ns);
    atomic_store(&e->snap_last_us, (uint64_t)(took_ns / 1000));
    atomic_fetch_add(&e->snap_ok, 1);
    log_info("snapshot: state at event %llu written in the background in %.2f s (CPU %.2f s; %llu records "
             "kept for it before writes changed them)",
             (unsigned long long)s->h.seq, took_ns / 1e9, s->cpu_s, (unsigned long long)atomic_load(&s->nkept));
  } else if (abort) {
    log_info("snapshot: the background snapshot at event %llu was stopped at shutdown", (unsigned long long)s->h.seq);
  } else {
    log_error("snapshot: the background snapshot failed (%s); the previous snapshot stays", recd_strerror(s->rc));
    atomic_fetch_add(&e->snap_failed, 1);
  }
  snapshot_free(s);
}

/* ---- loading ---- */

typedef struct {
  const unsigned char *p, *end;
  int bad;
} rbuf;

static void r_get(rbuf *r, void *out, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    memset(out, 0, n);
    return;
  }
  memcpy(out, r->p, n);
  r->p += n;
}

#define GET(r, x) r_get((r), &(x), sizeof(x))

static void get_user(rbuf *r, recd_engine *e, uint32_t uid) {
  userprof *p = engine__user_prof(e, uid, 1);
  uint16_t ring_len;
  uint8_t naff;
  GET(r, p->first_ts);
  GET(r, p->last_ts);
  GET(r, p->eng_t);
  GET(r, p->aff_t);
  GET(r, p->eng_score);
  GET(r, p->total);
  GET(r, ring_len);
  GET(r, naff);
  if (ring_len > e->cfg.recent_items || naff > USERPROF_MAX_AFF) {
    r->bad = 1;
    return;
  }
  if (ring_len) {
    p->ring = xmalloc(ring_len * sizeof *p->ring);
    p->ring_cap = p->ring_len = ring_len;
    p->ring_head = 0;
    for (int i = 0; i < ring_len; i++) {
      GET(r, p->ring[i].ts);
      GET(r, p->ring[i].iid);
      GET(r, p->ring[i].type);
    }
    userprof_ring_check(p);
  }
  if (naff) {
    p->aff = xmalloc(naff * sizeof *p->aff);
    p->naff = p->aff_cap = naff;
    r_get(r, p->aff, naff * sizeof *p->aff);
  }
  uint32_t nseen;
  GET(r, nseen);
  if (nseen > (size_t)(r->end - r->p) / 8) {
    r->bad = 1;
    return;
  }
  /* the final size at once (rehashing as it grew took a tenth of a load);
   * the capacity nseen puts reach: reserve(n) leaves room for one more */
  if (nseen) u32map_reserve(&p->seen, nseen - 1);
  for (uint32_t i = 0; i < nseen && !r->bad; i++) {
    uint32_t k, v;
    GET(r, k);
    GET(r, v);
    *u32map_put(&p->seen, k, 0, NULL) = v;
  }
  uint16_t sl;
  GET(r, sl);
  if (sl != 0xffff) {
    char small[sizeof p->sess_in], *buf = sl < sizeof small ? small : xmalloc(sl);
    r_get(r, buf, sl);
    userprof_set_session(p, buf, sl);
    if (buf != small) free(buf);
  }
  GET(r, p->session_start);
  GET(r, p->session_last);
  GET(r, p->session_events);
  GET(r, p->sessions);
  r_get(r, p->counts, (size_t)e->ntypes * sizeof(uint32_t));
}

static void r_skip(rbuf *r, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) r->bad = 1;
  else r->p += n;
}

/* past one user record (its `present` byte first) as get_user reads it,
 * storing nothing: where the load's second part starts (engine__snapshot_load) */
static void skip_user(rbuf *r, int ntypes) {
  const userprof *p = NULL; /* sizeof only */
  const recent_ev *x = NULL;
  uint8_t present, naff;
  uint16_t ring_len, sl;
  uint32_t nseen;
  GET(r, present);
  if (!present) return;
  r_skip(r, sizeof p->first_ts + sizeof p->last_ts + sizeof p->eng_t + sizeof p->aff_t + sizeof p->eng_score +
                sizeof p->total);
  GET(r, ring_len);
  GET(r, naff);
  r_skip(r, (size_t)ring_len * (sizeof x->ts + sizeof x->iid + sizeof x->type) + (size_t)naff * sizeof *p->aff);
  GET(r, nseen);
  r_skip(r, (size_t)nseen * 2 * sizeof(uint32_t));
  GET(r, sl);
  if (sl != 0xffff) r_skip(r, sl);
  r_skip(r, sizeof p->session_start + sizeof p->session_last + sizeof p->session_events + sizeof p->sessions +
                (size_t)ntypes * sizeof(uint32_t));
}

static void get_item(rbuf *r, recd_engine *e, uint32_t iid) {
  itemstats *s = engine__item_stats(e, iid, 1);
  GET(r, s->first_ts);
  GET(r, s->last_ts);
  GET(r, s->pop_t);
  GET(r, s->pop);
  GET(r, s->weight_total);
  r_get(r, s->bucket_day, sizeof s->bucket_day);
  r_get(r, s->bucket, sizeof s->bucket);
  r_get(r, s->counts, (size_t)e->ntypes * sizeof(uint32_t));
  uint16_t n;
  GET(r, n);
  if (!n) return;
  if (n > COVIS_LIMIT(e->cfg.covis_max_neighbors) + 1) {
    r->bad = 1;
    return;
  }
  covis_list *l = covis_new(0);
  GET(r, l->t0);
  GET(r, l->norm);
  GET(r, l->floor);
  l->n = n;
  l->cap = (uint16_t)covis_load_cap(n, e->cfg.covis_max_neighbors);
  l->e = xmalloc(l->cap * sizeof *l->e);
  r_get(r, l->e, n * sizeof *l->e);
  covis_reindex(l);
  ptrvec_set(&e->covis, iid, l);
}

typedef struct {
  const unsigned char *m;
  size_t n;
  uint64_t h;
} hash_job;

static void *hash_main(void *arg) {
  hash_job *j = arg;
  j->h = fileio_hash(0x5eed, j->m, j->n);
  return NULL;
}

/* one thread's part of a load: users [from, to), then nitems items, from r */
typedef struct {
  recd_engine *e;
  rbuf r;
  uint64_t from, to, nitems;
} load_part;

static void *load_main(void *arg) {
  load_part *lp = arg;
  for (uint64_t u = lp->from; u < lp->to && !lp->r.bad; u++) {
    uint8_t present;
    GET(&lp->r, present);
    if (present) get_user(&lp->r, lp->e, (uint32_t)u);
  }
  for (uint64_t i = 0; i < lp->nitems && !lp->r.bad; i++) get_item(&lp->r, lp->e, (uint32_t)i);
  return NULL;
}

/* 1 loaded (*seq set), 0 no usable snapshot (nothing changed), < 0 error after
 * state was touched (the caller must start over without the snapshot) */
int engine__snapshot_load(recd_engine *e, uint64_t *seq, char *why, size_t whylen) {
  char path[1100];
  snprintf(path, sizeof path, "%s/state.snap", e->cfg.data);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(why, whylen, "no snapshot");
    return 0;
  }
  struct stat st;
  if (fstat(fd, &st) || st.st_size < 8 * 8 + RECD_MAX_TYPES * 8 + 16) {
    close(fd);
    snprintf(why, whylen, "%s is too short", path);
    return 0;
  }
  size_t size = (size_t)st.st_size;
  const unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    snprintf(why, whylen, "cannot map %s: %s", path, strerror(errno));
    return 0;
  }
  madvise((void *)m, size, MADV_SEQUENTIAL);
  int rc = 0;
  uint64_t h, fp, snap_seq, nusers, nitems, events, by_type[RECD_MAX_TYPES];
  int64_t now;
  memcpy(&h, m + size - 16, 8);
  if (memcmp(m, SNAP_MAGIC, 8) || memcmp(m + size - 8, SNAP_END, 8) || (size - 16) % 8) {
    snprintf(why, whylen, "%s is not a complete snapshot", path);
    goto out;
  }
  /* The hash on a second thread while this one reads the header and skips
   * to where the second part starts (reads, bounds-checked, nothing kept):
   * nothing is decided, let alone changed, before the hash matched. */
  hash_job hj = {.m = m, .n = size - 16};
  pthread_t hasher;
  int hashing = !pthread_create(&hasher, NULL, hash_main, &hj);
  if (!hashing) hash_main(&hj);
  rbuf r = {.p = m + 8, .end = m + size - 16};
  GET(&r, snap_seq); /* *seq only once loaded: the caller replays from it */
  GET(&r, fp);
  GET(&r, now);
  GET(&r, nusers);
  GET(&r, nitems);
  GET(&r, events);
  r_get(&r, by_type, sizeof by_type);
  /* Two threads parse: this one the first users, a second one the other
   * users and the items (each part's records are its own; the ptrvecs take
   * concurrent sets). The split at 3/4 of the users gave the two parts about
   * equal time at 1M users / 100k items (at 1/2 the items' part ran 0.8 s
   * alone). Where the second part starts is found by skipping the first
   * part's records; this thread must end exactly there. */
  load_part second = {.e = e, .r = r, .from = nusers <= strmap_count(&e->users) ? nusers / 4 * 3 : 0, .to = nusers,
                      .nitems = nitems};
  for (uint64_t u = 0; u < second.from && !second.r.bad; u++) skip_user(&second.r, e->ntypes);
  if (hashing) pthread_join(hasher, NULL);
  if (hj.h != h) {
    snprintf(why, whylen, "%s fails its checksum", path);
    goto out;
  }
  if (fp != engine__fingerprint(e)) {
    snprintf(why, whylen, "the options that shape the live state (event types and weights, half-lives, "
                          "recent_items, covis_*) changed since the snapshot");
    goto out;
  }
  if (nusers > strmap_count(&e->users) || nitems > strmap_count(&e->items) || snap_seq > e->next_seq_stored) {
    snprintf(why, whylen, "the snapshot is newer than the database (seq %llu)", (unsigned long long)snap_seq);
    goto out;
  }
  if (second.r.bad) {
    snprintf(why, whylen, "%s is malformed", path);
    goto out;
  }
  /* from here on state changes */
  rc = 1;
  const unsigned char *split = second.r.p;
  pthread_t helper;
  int threaded = !pthread_create(&helper, NULL, load_main, &second);
  if (!threaded) load_main(&second);
  load_part first = {.e = e, .r = r, .from = 0, .to = second.from};
  load_main(&first);
  if (threaded) pthread_join(helper, NULL);
  if (first.r.p != split) first.r.bad = 1;
  r.bad = first.r.bad || second.r.bad;
  if (r.bad) {
    snprintf(why, whylen, "%s is malformed", path);
    rc = RECD_ECORRUPT;
    goto out;
  }
  atomic_store(&e->now_ms, now);
  atomic_store(&e->n_events, events);
  for (int i = 0; i < RECD_MAX_TYPES; i++) atomic_store(&e->by_type[i], by_type[i]);
  e->next_seq = *seq = snap_seq;
out:
  munmap((void *)m, size);
  return rc;
}
