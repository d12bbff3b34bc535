#include "util/topkeys.h"

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

/* quicksort (median of three, insertion sort below 16), recursing into the
 * smaller side so the stack stays O(log n) */
void topkeys_sort(uint64_t *k, size_t n) {
  while (n > 16) {
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
  if (n <= 2 * SAMPLE || 4 * want >= n) { /* small or most of it: sort it all */
    topkeys_sort(k, n);
    return n;
  }
  /* a threshold from an evenly spaced sample, aimed at ~1.5 x want keys at or
   * above it; lowered (twice as deep in the sample) until enough keys reach it */
  uint64_t s[SAMPLE];
  size_t step = n / SAMPLE;
  for (size_t i = 0; i < SAMPLE; i++) s[i] = k[i * step];
  size_t at = (3 * want * SAMPLE) / (2 * n) + 1, c = 0, from = 0;
  for (;;) {
    uint64_t t = at < SAMPLE ? rank_of_sample(s, SAMPLE, at) : 0;
    /* branch-free (a few per cent of the keys pass: a branch mispredicted
     * on each of them): every key is swapped with k[c], which is below t
     * unless c == i, and c moves on only past a key that reached t */
    for (size_t i = from; i < n; i++) {
      uint64_t x = k[i];
      k[i] = k[c];
      k[c] = x;
      c += x >= t;
    }
    if (c >= want || at >= SAMPLE) break;
    /* too few: k[0..c) reached the old threshold; scan the rest against a lower one */
    from = c;
    at = at * 2 < SAMPLE ? at * 2 : SAMPLE;
  }
  topkeys_sort(k, c);
  return c;
}
