/* fileio.h — small helpers shared by every file format of recd (snapshots,
 * model files): whole reads and writes, a 64-bit checksum, and the atomic
 * replace (write path.tmp, fsync, rename, fsync the directory). Thread-safe. */
#ifndef RECD_UTIL_FILEIO_H
#define RECD_UTIL_FILEIO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* 0 or -errno; retries short writes and EINTR */
int fileio_write_all(int fd, const void *buf, size_t n);
/* the same at offset off (pwrite: the file position is left alone) */
int fileio_pwrite_all(int fd, const void *buf, size_t n, uint64_t off);
/* Turn O_DIRECT on or off for fd's later writes: 0, or -errno (EINVAL where
 * the file system has no direct I/O, tmpfs for one). Direct writes need
 * buffers, lengths and offsets aligned to the disk's block (4096 covers all);
 * they go from the buffer to the disk, no page-cache copy and no dirty pages. */
int fileio_direct(int fd, int on);
/* Write back bytes [off, off + len) of fd to disk and wait for them. A big file
 * written in such steps keeps the kernel's dirty pages, and so the wait of every
 * other fsync on the same disk (the database's commits), small. */
int fileio_writeback(int fd, uint64_t off, uint64_t len);
/* Start writing back bytes [off, off + len) of fd; returns without waiting for
 * the disk (unless its queue is full). 0 or -errno. */
int fileio_writeback_start(int fd, uint64_t off, uint64_t len);
/* 0, -errno, or RECD_ECORRUPT when the file ends first */
int fileio_read_all(int fd, void *buf, size_t n);

/* A 64-bit checksum (catches corruption, not attacks). Hashing a buffer in
 * pieces gives the same value as in one go when every piece but the last is
 * a multiple of 8 bytes long. */
uint64_t fileio_hash(uint64_t h, const void *buf, size_t n);

/* "path.tmp", xmalloc'ed */
char *fileio_tmp_path(const char *path);
/* "path.tmp" opened for writing (O_TRUNC); *tmp gets the xmalloc'ed name. -errno on failure. */
int fileio_create_tmp(const char *path, char **tmp);
/* fsync and close fd, rename tmp over path, fsync the directory; frees tmp.
 * On failure the tmp file is removed and path is untouched. */
int fileio_commit(int fd, char *tmp, const char *path, int rc);
/* Remove path, freeing its blocks `step` bytes at a time (ftruncate), pause_us
 * apart. Freeing a big file's blocks in one go (unlink, or rename over it) holds
 * the file system's journal, and so every other fsync on it, for its whole
 * length: on ext4 mounted with `discard`, a 1.2 GB file held the fdatasyncs
 * beside it for 45-57 ms; 8 MiB steps 5 ms apart kept them under 3 ms. A file
 * with other links is only unlinked (its blocks stay theirs). Once *hurry
 * (if given) is nonzero, the rest goes in one go. 0 (also when there is no
 * such file) or -errno. */
int fileio_remove_gently(const char *path, uint64_t step, unsigned pause_us, const atomic_int *hurry);

/* The envelope every recd model file starts with: 8 magic bytes, then a
 * little-endian u32 format version, and at least 8 bytes (the checksum)
 * after a header of hdrlen bytes. `what` names the kind in messages
 * ("iALS model"). fileio_check_envelope checks a header already in memory
 * (size = the whole file's); fileio_open_envelope opens path, checks the
 * size, reads the header into hdr and checks it. They return 0 / an open fd,
 * or -1 with a message in err. */
int fileio_check_envelope(const unsigned char *hdr, uint64_t size, size_t hdrlen, const char *magic,
                          uint32_t version, const char *what, const char *path, char *err, size_t errlen);
int fileio_open_envelope(const char *path, const char *magic, uint32_t version, const char *what, void *hdr,
                         size_t hdrlen, uint64_t *size, char *err, size_t errlen);

#endif
