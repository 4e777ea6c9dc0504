#!/usr/bin/env python3
"""docs/audit/verify_chain.py on many commits of one store in one process.

Usage: verify_chain_batch.py STORE_DIR POLICY_JSON SHA [SHA ...]

Loads the auditor's verifier once (its imports are most of a run's time) and runs its
main() for each SHA as `verify_chain.py STORE_DIR POLICY_JSON SHA` would run, printing
one JSON line per SHA: {"sha", "exit", "output"}, where exit is the code the script
would exit with and output what it would print (stdout, then stderr)."""

import contextlib
import io
import json
import os
import runpy
import sys
import traceback

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "audit", "verify_chain.py")


def run(main, store, policy, sha):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([SCRIPT, store, policy, sha])
            code = 0
        except SystemExit as e:
            # As the interpreter maps it: None is 0, a number itself, a message 1.
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
        except Exception:  # an uncaught error: the script would exit 1 with a traceback
            traceback.print_exc()
            code = 1
    return {"sha": sha, "exit": code, "output": out.getvalue() + err.getvalue()}


def main(argv):
    store, policy, shas = argv[1], argv[2], argv[3:]
    verifier = runpy.run_path(SCRIPT)  # not as __main__: its main() is only defined
    for sha in shas:
        print(json.dumps(run(verifier["main"], store, policy, sha)), flush=True)


if __name__ == "__main__":
    main(sys.argv)
