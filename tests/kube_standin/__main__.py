"""Run the Kubernetes API stand-in by hand (tests only): ``python -m tests.kube_standin --port N``."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.kube_standin import KubeStandIn


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Kubernetes API stand-in for knevents tests (not a real API server)"
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 = a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = KubeStandIn(args.host, args.port).start()
    kubeconfig = server.kubeconfig(Path(tempfile.mkdtemp(prefix="kube-standin-")) / "kubeconfig")
    print(f"kube stand-in on {server.url}; KUBECONFIG={kubeconfig}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
