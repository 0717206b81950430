#!/usr/bin/env python3
"""Rebuild of an unchanged 10-step Dockerfile (every step cached), through `clusterctl build`.
Target (issue #4): < 1 s.

    sudo .venv/bin/python bench/build.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from common import bench_agent

DOCKERFILE = """\
FROM busybox:bench
ENV APP=/app
WORKDIR /app
COPY src/ ./src/
RUN echo one > one.txt
RUN echo two > two.txt && mkdir -p /data
COPY config.txt /etc/app.conf
RUN cat /etc/app.conf > /data/copy
LABEL purpose=bench
CMD ["cat", "/app/one.txt"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shoal-bench-build-") as context, bench_agent("build") as agent:
        os.makedirs(os.path.join(context, "src"))
        for name, text in (("Dockerfile", DOCKERFILE), ("config.txt", "key=value\n"), ("src/main.sh", "echo hi\n")):
            with open(os.path.join(context, name), "w") as f:
                f.write(text)
        began = time.perf_counter()
        first = agent.cli("build", "-t", "bench:built", context, timeout=300)
        cold = time.perf_counter() - began
        if first.code:
            raise SystemExit(first.err)
        warm = []
        for _ in range(args.rounds):
            began = time.perf_counter()
            again = agent.cli("build", "-t", "bench:built", context, timeout=300)
            warm.append(time.perf_counter() - began)
            if again.code or "Running in" in again.out:
                raise SystemExit(f"the rebuild was not all cached:\n{again.out}{again.err}")
        print(f"10-step Dockerfile: first build {cold:.2f} s; unchanged rebuild (all cached) median "
              f"{statistics.median(warm):.2f} s over {args.rounds} (target < 1 s), including clusterctl's start-up")


if __name__ == "__main__":
    main()
