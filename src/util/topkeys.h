/* topkeys.h — the largest of an array of uint64 keys, sorted, for lists that
 * look at the first few dozen of several hundred or thousand scored entries.
 *
 * A key packs what is compared in one integer (recommend.c: a non-negative
 * float score's bits above a tie-breaking id), so every comparison is one
 * instruction. */
#ifndef RECD_UTIL_TOPKEYS_H
#define RECD_UTIL_TOPKEYS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* the key of (score, id): the float's bits in an order that compares like the
 * floats (negative ones below positive ones), above the id, which breaks ties
 * (the larger id first) */
static inline uint64_t topkeys_key(float score, uint32_t id) {
  uint32_t b;
  memcpy(&b, &score, sizeof b);
  b ^= b >> 31 ? 0xffffffffu : 0x80000000u;
  return (uint64_t)b << 32 | id;
}

/* Move at least min(want, n) of the largest keys of k[0..n) to its front,
 * sorted in descending order, and return how many that is (c >= that, <= n):
 * k[0..c) are then the c largest keys in order, and k[c..n) holds the rest in
 * no order, so a caller can ask again on k + c for the next ones. Keys should
 * be distinct (equal keys are interchangeable). Typical cost: one pass over
 * the keys plus a sort of about 1.5 x want of them. */
size_t topkeys_front(uint64_t *k, size_t n, size_t want);

/* sort k[0..n) in descending order */
void topkeys_sort(uint64_t *k, size_t n);

#endif
