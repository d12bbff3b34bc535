#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/mem.h"

/* write (off < 0: at the file position) or pwrite all of buf */
static int write_loop(int fd, const char *p, size_t n, int64_t off) {
  while (n) {
    size_t k = n > (1u << 30) ? (1u << 30) : n;
    ssize_t w = off < 0 ? write(fd, p, k) : pwrite(fd, p, k, (off_t)off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
    if (off >= 0) off += w;
  }
  return 0;
}

int fileio_write_all(int fd, const void *buf, size_t n) { return write_loop(fd, buf, n, -1); }

int fileio_pwrite_all(int fd, const void *buf, size_t n, uint64_t off) { return write_loop(fd, buf, n, (int64_t)off); }

int fileio_direct(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT)) return -errno;
  return 0;
}

int fileio_writeback_start(int fd, uint64_t off, uint64_t len) {
  if (sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE)) return -errno;
  return 0;
}

int fileio_writeback(int fd, uint64_t off, uint64_t len) {
  if (sync_file_range(fd, (off_t)off, (off_t)len,
                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER))
    return -errno;
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

char *fileio_tmp_path(const char *path) {
  size_t n = strlen(path);
  char *tmp = xmalloc(n + 5);
  memcpy(tmp, path, n);
  memcpy(tmp + n, ".tmp", 5);
  return tmp;
}

int fileio_create_tmp(const char *path, char **tmp) {
  *tmp = fileio_tmp_path(path);
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

int fileio_remove_gently(const char *path, uint64_t step, unsigned pause_us, const atomic_int *hurry) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -errno;
  struct stat st;
  int rc = fstat(fd, &st) ? -errno : 0;
  /* another name for the same file: the unlink frees nothing, and a truncation would empty it */
  for (uint64_t size = rc || st.st_nlink > 1 ? 0 : (uint64_t)st.st_size; size > 0;) {
    size = size > step ? size - step : 0;
    if (ftruncate(fd, (off_t)size)) {
      rc = -errno;
      break;
    }
    if (hurry && atomic_load(hurry)) break;
    if (pause_us && size) usleep(pause_us);
  }
  close(fd);
  if (unlink(path) && errno != ENOENT && !rc) rc = -errno;
  return rc;
}

int fileio_check_envelope(const unsigned char *hdr, uint64_t size, size_t hdrlen, const char *magic,
                          uint32_t version, const char *what, const char *path, char *err, size_t errlen) {
  if (size < (uint64_t)hdrlen + 8) {
    snprintf(err, errlen, "%s is too short (%llu bytes) to be a %s", path, (unsigned long long)size, what);
    return -1;
  }
  if (memcmp(hdr, magic, 8)) {
    snprintf(err, errlen, "%s is not a %s (bad magic)", path, what);
    return -1;
  }
  uint32_t v = (uint32_t)hdr[8] | (uint32_t)hdr[9] << 8 | (uint32_t)hdr[10] << 16 | (uint32_t)hdr[11] << 24;
  if (v != version) {
    snprintf(err, errlen, "%s has %s format version %u, this build reads version %u", path, what, v, version);
    return -1;
  }
  return 0;
}

int fileio_open_envelope(const char *path, const char *magic, uint32_t version, const char *what, void *hdr,
                         size_t hdrlen, uint64_t *size, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st)) {
    snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  *size = (uint64_t)st.st_size;
  int rc = 0;
  if (*size >= (uint64_t)hdrlen + 8 && (rc = fileio_read_all(fd, hdr, hdrlen))) {
    snprintf(err, errlen, "cannot read %s: %s", path, recd_strerror(rc));
    close(fd);
    return -1;
  }
  if (fileio_check_envelope(hdr, *size, hdrlen, magic, version, what, path, err, errlen)) {
    close(fd);
    return -1;
  }
  return fd;
}
