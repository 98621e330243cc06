"""The demo's stand-in ECR API: tests/standin_ecr.py, plus a count of the calls it answered.

Why: the demo shows that a run with nothing due costs no AWS call. The
stand-in records every call it receives; this keeps ``--calls-file`` up to
date with how many (and of which operation), so demo.sh can print the count
before and after a run. Serves on 127.0.0.1 until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from standin_ecr import StandinECR


def write_counts(standin: StandinECR, path: Path) -> int:
    """Write {"count": N, "operations": {name: n}} atomically; return N."""
    targets = [call.target for call in standin.ecr_calls() + standin.sts_calls()]
    operations = collections.Counter(target.rsplit(".", 1)[-1] for target in targets)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps({"count": len(targets), "operations": dict(operations)}))
    os.replace(partial, path)
    return len(targets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--password-file", required=True, help="file holding the token password (never on a command line)")
    parser.add_argument("--proxy-endpoint", required=True, help="the registry URL every token is for")
    parser.add_argument("--calls-file", required=True, type=Path, help="where the call count is kept")
    args = parser.parse_args()
    password = Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with StandinECR(password, proxy_endpoint_template=args.proxy_endpoint, port=args.port) as standin:
        written = write_counts(standin, args.calls_file)
        print(standin.url, flush=True)
        while not stop.wait(0.05):
            if standin.call_count != written:  # new calls (recorded as they arrive)
                written = write_counts(standin, args.calls_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
