#!/usr/bin/env python3
"""Run the recd black-box suite: every test_*.py next to this file.

    RECD_BIN=build/recd python3 tests/blackbox/run.py [-k PATTERN ...] [-x]

-k PATTERN   only tests whose name matches (unittest -k semantics; repeatable)
-x           stop at the first failure

Prints the unittest report (verbosity 2), then exactly one summary line
`blackbox: N passed, N failed[, N skipped]`, and exits non-zero on any failure
or error."""

import argparse
import os
import signal
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class CountingResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super(CountingResult, self).__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super(CountingResult, self).addSuccess(test)
        self.passed += 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", dest="patterns", action="append", default=None,
                    help="only run tests matching this substring/pattern")
    ap.add_argument("-x", "--failfast", action="store_true")
    args = ap.parse_args(argv)

    # SIGTERM -> KeyboardInterrupt, so servers are killed on the way out (the
    # default action would skip the atexit clean-up in harness.py)
    def on_term(signum, frame):
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, on_term)

    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if "*" in p else "*%s*" % p for p in args.patterns]
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)

    runner = unittest.TextTestRunner(verbosity=2, resultclass=CountingResult,
                                     failfast=args.failfast, stream=sys.stderr)
    result = runner.run(suite)

    try:
        import harness
        harness.finish()
    except ImportError:
        pass

    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    line = "blackbox: %d passed, %d failed" % (result.passed, failed)
    if result.skipped:
        line += ", %d skipped" % len(result.skipped)
    sys.stderr.flush()
    print(line, flush=True)
    return 1 if failed or not result.wasSuccessful() else 0


if __name__ == "__main__":
    sys.exit(main())
