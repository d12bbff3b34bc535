#include "util/topkeys.h"

#include <stdatomic.h>
#include <string.h>

static inline void swap_k(uint64_t *a, uint64_t *b) {
  uint64_t t = *a;
  *a = *b;
  *b = t;
}

static void insertion_desc(uint64_t *k, size_t n) {
  for (size_t i = 1; i < n; i++) {
    uint64_t x = k[i];
    size_t j = i;
    for (; j > 0 && k[j - 1] < x; j--) k[j] = k[j - 1];
    k[j] = x;
  }
}

#define RANK_MAX 256 /* rank_sort's largest n */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_RANK_SORT 1

/* Sorts n <= RANK_MAX distinct keys by counting, for each, the keys above it:
 * n^2/4 compares of four keys at once (AVX2), no branch on the data. Returns
 * -1 (k unchanged) if two keys are equal. The lists' sorts (~50-110 keys)
 * were a tenth of a recommendation, most of it mispredicted branches;
 * isolated, this is 3x faster at 64 keys and 2.3x at 112. */
__attribute__((target("avx2"))) static int rank_sort(uint64_t *k, size_t n) {
  int64_t s[RANK_MAX] __attribute__((aligned(32)));
  uint64_t out[RANK_MAX];
  uint8_t taken[RANK_MAX] = {0};
  size_t np = (n + 3) & ~(size_t)3;
  for (size_t i = 0; i < n; i++) s[i] = (int64_t)(k[i] ^ (1ULL << 63)); /* signed compares */
  for (size_t i = n; i < np; i++) s[i] = INT64_MIN;
  int dup = 0;
  for (size_t i = 0; i < n; i++) {
    __m256i x = _mm256_set1_epi64x(s[i]), above = _mm256_setzero_si256();
    for (size_t j = 0; j < np; j += 4)
      above = _mm256_sub_epi64(above, _mm256_cmpgt_epi64(_mm256_load_si256((const __m256i *)(s + j)), x));
    __m128i h = _mm_add_epi64(_mm256_castsi256_si128(above), _mm256_extracti128_si256(above, 1));
    size_t r = (size_t)(_mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1));
    dup |= taken[r];
    taken[r] = 1;
    out[r] = k[i];
  }
  if (dup) return -1;
  memcpy(k, out, n * sizeof *k);
  return 0;
}

static int have_avx2(void) {
  static _Atomic int v = -1; /* every thread that finds it unset computes the same */
  int x = atomic_load_explicit(&v, memory_order_relaxed);
  if (x < 0) atomic_store_explicit(&v, x = __builtin_cpu_supports("avx2") ? 1 : 0, memory_order_relaxed);
  return x;
}
#endif

/* quicksort (median of three), recursing into the smaller side so the stack
 * stays O(log n); parts of up to RANK_MAX keys by rank_sort where the CPU has
 * AVX2, else by insertion below 16 */
void topkeys_sort(uint64_t *k, size_t n) {
#ifdef HAVE_RANK_SORT
  size_t small = have_avx2() ? RANK_MAX : 16;
#else
  size_t small = 16;
#endif
  while (n > small) {
    size_t mid = n / 2;
    if (k[mid] > k[0]) swap_k(&k[mid], &k[0]);
    if (k[n - 1] > k[0]) swap_k(&k[n - 1], &k[0]);
    if (k[n - 1] > k[mid]) swap_k(&k[n - 1], &k[mid]);
    uint64_t pivot = k[mid]; /* k[0] >= pivot >= k[n-1]: both scans stop in range */
    size_t i = 0, j = n - 1;
    for (;;) {
      while (k[i] > pivot) i++;
      while (k[j] < pivot) j--;
      if (i >= j) break;
      swap_k(&k[i], &k[j]);
      i++, j--;
    }
    /* k[0..j] >= pivot >= k[j+1..n) */
    size_t left = j + 1;
    if (left < n - left) {
      topkeys_sort(k, left);
      k += left, n -= left;
    } else {
      topkeys_sort(k + left, n - left);
      n = left;
    }
  }
#ifdef HAVE_RANK_SORT
  if (n > 16 && !rank_sort(k, n)) return;
#endif
  insertion_desc(k, n);
}

#define SAMPLE 64

/* the (r+1)-th largest of s[0..n) (r < n), keeping the r+1 largest in order in
 * a small buffer: most samples compare once with its last and pass */
static uint64_t rank_of_sample(const uint64_t *s, size_t n, size_t r) {
  uint64_t top[SAMPLE];
  size_t c = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t x = s[i];
    if (c == r + 1) {
      if (x <= top[r]) continue;
      c--;
    }
    size_t j = c++;
    for (; j > 0 && top[j - 1] < x; j--) top[j] = top[j - 1];
    top[j] = x;
  }
  return top[r];
}

size_t topkeys_front(uint64_t *k, size_t n, size_t want) {
  if (want > n) want = n;
  if (!want) return 0;
  if (2 * want >= n) { /* most of it: sort it all */
    topkeys_sort(k, n);
    return n;
  }
  /* a threshold from an evenly spaced sample (all of a small array), aimed at
   * ~1.5 x want keys at or above it; lowered (twice as deep in the sample)
   * until enough keys reach it. Small arrays too: a sort costs more per key
   * than a pass (rank_sort: n^2) */
  uint64_t s[SAMPLE];
  size_t ns = n < SAMPLE ? n : SAMPLE, step = n / ns;
  for (size_t i = 0; i < ns; i++) s[i] = k[i * step];
  size_t at = (3 * want * ns) / (2 * n) + 1, c = 0, from = 0;
  for (;;) {
    uint64_t t = at < ns ? rank_of_sample(s, ns, at) : 0;
    /* branch-free (a few per cent of the keys pass: a branch mispredicted
     * on each of them): every key is swapped with k[c], which is below t
     * unless c == i, and c moves on only past a key that reached t */
    for (size_t i = from; i < n; i++) {
      uint64_t x = k[i];
      k[i] = k[c];
      k[c] = x;
      c += x >= t;
    }
    if (c >= want || at >= ns) break;
    /* too few: k[0..c) reached the old threshold; scan the rest against a lower one */
    from = c;
    at = at * 2 < ns ? at * 2 : ns;
  }
  topkeys_sort(k, c);
  return c;
}
