#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/mem.h"

int fileio_write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int fileio_read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n) {
    ssize_t r = read(fd, p, n > (1u << 30) ? (1u << 30) : n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return RECD_ECORRUPT;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static uint64_t mix(uint64_t h, uint64_t w) {
  h ^= w * 0x9e3779b97f4a7c15ULL;
  h = (h << 27) | (h >> 37);
  return h * 0xff51afd7ed558ccdULL + 0x4cf5ad432745937fULL;
}

uint64_t fileio_hash(uint64_t h, const void *buf, size_t n) {
  const unsigned char *p = buf;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = mix(h, w);
  }
  if (i < n) {
    uint64_t w = 0;
    memcpy(&w, p + i, n - i);
    h = mix(h, w ^ ((uint64_t)(n - i) << 56));
  }
  return h;
}

int fileio_create_tmp(const char *path, char **tmp) {
  size_t n = strlen(path);
  *tmp = xmalloc(n + 5);
  memcpy(*tmp, path, n);
  memcpy(*tmp + n, ".tmp", 5);
  int fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    free(*tmp);
    *tmp = NULL;
    return -e;
  }
  return fd;
}

int fileio_commit(int fd, char *tmp, const char *path, int rc) {
  if (!rc && fsync(fd)) rc = -errno;
  if (close(fd) && !rc) rc = -errno;
  if (!rc && rename(tmp, path)) rc = -errno;
  if (rc) {
    unlink(tmp);
    free(tmp);
    return rc;
  }
  free(tmp);
  /* make the rename itself durable */
  char *dir = xstrdup(path), *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  int dfd = open(slash ? (*dir ? dir : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (fsync(dfd)) rc = -errno;
    close(dfd);
  }
  free(dir);
  return rc;
}
