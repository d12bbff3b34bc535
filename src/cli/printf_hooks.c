/* printf_hooks.c — refuse glibc's printf extension hooks.
 *
 * OpenBLAS (linked for the iALS and EASE trainers) pulls in libgfortran and
 * with it libquadmath, whose constructor registers a printf type, modifier
 * and specifiers for __float128 ('%Qf'). Once any hook is registered, glibc
 * formats every printf call of the process on its slow path (format parsed
 * twice, arguments through the positional machinery), and libevent builds
 * each response's status line and headers with printf: refusing the hooks took
 * an event POST from 87,200 to 84,000 instructions and a GET from 247,000 to
 * 243,900 (bench/callgrind).
 *
 * The executable's definitions of these three functions take precedence over
 * libc's for every library loaded with it (the usual ELF interposition; the
 * link exports them with --export-dynamic-symbol), so libquadmath's
 * registration gets -1 and gives up, and printf stays on its fast path. recd
 * never prints __float128 or registers printf hooks of its own. */
#include <errno.h>
#include <printf.h>

int register_printf_type(printf_va_arg_function *fct) {
  (void)fct;
  errno = ENOSYS;
  return -1;
}

int register_printf_modifier(const wchar_t *str) {
  (void)str;
  errno = ENOSYS;
  return -1;
}

int register_printf_specifier(int spec, printf_function func, printf_arginfo_size_function arginfo) {
  (void)spec, (void)func, (void)arginfo;
  errno = ENOSYS;
  return -1;
}
