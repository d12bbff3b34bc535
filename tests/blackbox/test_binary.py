"""Properties of the recd binary itself, checked on the built executable."""
import os
import re
import subprocess
import unittest

from harness import recd_bin


class BinaryTest(unittest.TestCase):
    def test_printf_hooks_refused(self):
        # libquadmath (pulled in by OpenBLAS) registers printf hooks in its
        # constructor, which puts every printf of the process on glibc's slow
        # path; the executable's own register_printf_* must win the binding
        # (src/cli/printf_hooks.c, exported by the Makefile's link).
        env = dict(os.environ, LD_DEBUG="bindings")
        p = subprocess.run([recd_bin(), "--version"], env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        binds = [l for l in p.stderr.splitlines() if "register_printf_" in l and "binding file" in l]
        if not any("libquadmath" in l for l in binds):
            self.skipTest("libquadmath is not loaded by this build")
        for l in binds:
            m = re.search(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]", l)
            self.assertIsNotNone(m, l)
            self.assertEqual(os.path.basename(m.group(2)), os.path.basename(recd_bin()), l)


if __name__ == "__main__":
    unittest.main()
