#!/usr/bin/env python3
"""Network between containers on two hosts against the same between the two hosts themselves.

`clusterctl up --hosts 2` (host-gw routing by default, `--routing vxlan` for the overlay): a
server replica on host 1, a client replica on host 2. The same busybox server and client also run
directly in the two hosts' network namespaces. Interleaved rounds, which alternate which goes
first, measure throughput (a 1 GiB file over HTTP from busybox httpd, which sends it with
sendfile from the page cache, timed by busybox `time` inside the client) and latency (ping
round trips). One transfer on this 2-core VM differs from the next by up to 2x, so each round's
two downloads run back to back and the median of the 15 rounds' ratios is the figure. Target
for host-gw: container throughput >= 0.9x the hosts'.

    sudo .venv/bin/python bench/network.py [--rounds 15] [--routing host-gw|vxlan]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time

from common import LocalCluster

MIB = 1024
SERVER = f"mkdir -p /www && dd if=/dev/zero of=/www/zero bs=1048576 count={MIB} && exec httpd -f -p 8000 -h /www"
APPS = """name: server
image: busybox:local
placement: {{constraints: ["node.name == h1"]}}
command: ["sh", "-c", {server}]
---
name: client
image: busybox:local
placement: {{constraints: ["node.name == h2"]}}
command: ["sleep", "100000"]
"""
DOWNLOAD = "busybox time -p busybox wget -q -O /dev/null http://{address}:8000/zero"


def seconds(time_output: str) -> float:
    match = re.search(r"real\s+([\d.]+)", time_output)
    if not match:
        raise RuntimeError(f"no timing in: {time_output!r}")
    return float(match.group(1))


def rtt(ping_output: str) -> float:
    match = re.search(r"min/avg/max = [\d.]+/([\d.]+)/", ping_output)
    if not match:
        raise RuntimeError(f"no round trips in: {ping_output!r}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--routing", choices=("host-gw", "vxlan"), default="host-gw")
    args = parser.parse_args()
    with LocalCluster(2, "--network-routing", args.routing) as cluster:
        network = cluster.record["network"]
        host_ns = [["nsenter", f"--net=/run/netns/{ns}", "--"] for ns in network["namespaces"]]
        server_address = network["addresses"][0]
        cluster.deploy(APPS.format(server=json.dumps(SERVER)))
        replicas = {r["app"]: r for r in json.loads(cluster.ctl("get", "containers", "-o", "json"))}
        container_address = replicas["server"]["address"]
        with tempfile.TemporaryDirectory(prefix="shoal-bench-net-") as www:
            with open(os.path.join(www, "zero"), "wb") as f:
                f.write(bytes(MIB << 20))
            host_server = subprocess.Popen([*host_ns[0], "busybox", "httpd", "-f", "-p", "8000", "-h", www])
            try:
                time.sleep(0.3)
                for address, where in ((server_address, host_ns[1]), (container_address, None)):  # warm caches
                    command = ["sh", "-c", DOWNLOAD.format(address=address)]
                    if where:
                        subprocess.run([*where, *command], capture_output=True, check=True)
                    else:
                        cluster.ctl("exec", "client.0", *command)
                hosts_mb, containers_mb, hosts_rtt, containers_rtt = [], [], [], []
                def hosts_download() -> None:
                    done = subprocess.run([*host_ns[1], "sh", "-c", DOWNLOAD.format(address=server_address)],
                                          capture_output=True, text=True, check=True)
                    hosts_mb.append(MIB / seconds(done.stderr))

                def containers_download() -> None:
                    out = cluster.ctl("exec", "client.0", "sh", "-c",
                                      DOWNLOAD.format(address=container_address) + " 2>&1")
                    containers_mb.append(MIB / seconds(out))

                for round_number in range(args.rounds):
                    pair = (hosts_download, containers_download)
                    for download in pair if round_number % 2 else reversed(pair):  # neither always first
                        download()
                    done = subprocess.run([*host_ns[1], "busybox", "ping", "-q", "-c", "200", "-i", "0.005",
                                           server_address], capture_output=True, text=True, check=True)
                    hosts_rtt.append(rtt(done.stdout))
                    out = cluster.ctl("exec", "client.0", "ping", "-q", "-c", "200", "-i", "0.005",
                                      container_address)
                    containers_rtt.append(rtt(out))
            finally:
                host_server.kill()
                host_server.wait()
    # Each round's two downloads run back to back, so their ratio cancels the drift of this shared
    # VM between rounds; the median of those ratios is the figure compared with the target.
    paired = statistics.median(c / h for h, c in zip(hosts_mb, containers_mb, strict=True))
    throughput = statistics.median(containers_mb) / statistics.median(hosts_mb)
    latency = statistics.median(containers_rtt) / statistics.median(hosts_rtt)
    print(f"two hosts, {args.routing} routing, {args.rounds} interleaved rounds (medians)")
    print(f"  throughput host → host            {statistics.median(hosts_mb):8.1f} MiB/s  "
          f"{sorted(map(round, hosts_mb))}")
    print(f"  throughput container → container  {statistics.median(containers_mb):8.1f} MiB/s  "
          f"{sorted(map(round, containers_mb))}")
    print(f"  ratio containers / hosts          {paired:8.2f}x   (median of the rounds' ratios; "
          "target >= 0.90x for host-gw)")
    print(f"  ratio of the medians              {throughput:8.2f}x")
    print(f"  round trip host ↔ host            {statistics.median(hosts_rtt) * 1000:8.1f} µs")
    print(f"  round trip container ↔ container  {statistics.median(containers_rtt) * 1000:8.1f} µs")
    print(f"  ratio containers / hosts          {latency:8.2f}x")


if __name__ == "__main__":
    main()
