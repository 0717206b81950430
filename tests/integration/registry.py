"""A real registry for tests and benchmarks: Debian's docker-registry (the reference implementation
of the distribution API) on a loopback port, and OCI image layouts for skopeo to push into it."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from cli.busybox_image import ARCH, image_config
from tests.integration.harness import free_port


@dataclass
class Registry:
    address: str
    storage: str
    process: subprocess.Popen[bytes]

    def push_layout(self, layout: str, image: str, *flags: str) -> None:
        """skopeo copy from an OCI image layout directory; `--all` pushes every platform of an index."""
        done = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *flags, f"oci:{layout}:latest",
                               f"docker://{self.address}/{image}"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def blob_path(self, digest: str) -> str:
        hex_digest = digest.removeprefix("sha256:")
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hex_digest[:2], hex_digest, "data")


def make_tls(root: str) -> tuple[str, str, str]:
    """A CA and a certificate it signed for 127.0.0.1 (openssl): (ca.crt, server.crt, server.key)."""
    ca_key, ca, key, csr, cert = (os.path.join(root, name) for name in ("ca.key", "ca.crt", "server.key",
                                                                        "server.csr", "server.crt"))
    extensions = os.path.join(root, "san.cnf")
    with open(extensions, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    for command in (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-subj",
                     "/CN=shoal-test-ca", "-days", "2"],
                    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
                    ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
                     "-days", "2", "-extfile", extensions]):
        subprocess.run(["openssl", *command], check=True, capture_output=True)
    return ca, cert, key


def start_registry(root: str, users: str = "", auth: dict[str, object] | None = None,
                   tls: tuple[str, str] | None = None) -> Registry:
    os.makedirs(root, exist_ok=True)
    address = f"127.0.0.1:{free_port()}"
    config = {"version": 0.1, "log": {"level": "warn"}, "http": {"addr": address},
              "storage": {"filesystem": {"rootdirectory": os.path.join(root, "data")}}}
    if users:
        config["auth"] = {"htpasswd": {"realm": "shoal-test", "path": users}}
    if auth:
        config["auth"] = auth
    if tls:
        config["http"] = {"addr": address, "tls": {"certificate": tls[0], "key": tls[1]}}
    with open(os.path.join(root, "config.yml"), "w") as f:
        json.dump(config, f)  # JSON is YAML
    log = open(os.path.join(root, "registry.log"), "ab")
    process = subprocess.Popen(["docker-registry", "serve", os.path.join(root, "config.yml")], stdout=log,
                               stderr=log)
    log.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if tls:
                socket.create_connection(tuple(address.split(":")), timeout=1).close()  # type: ignore[arg-type]
            else:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=1).close()
            break
        except urllib.error.HTTPError:  # 401 with auth: it serves
            break
        except OSError:
            time.sleep(0.05)
    return Registry(address, os.path.join(root, "data"), process)


def stop_registry(registry: Registry) -> None:
    registry.process.terminate()
    registry.process.wait(timeout=10)


def _blob(layout: str, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs/sha256", digest.removeprefix("sha256:")), "wb") as f:
        f.write(data)
    return {"digest": digest, "size": len(data)}


def write_layout(layout: str, layers: list[bytes], platforms: tuple[str, ...] = (ARCH,),
                 env: str = "") -> None:
    """An OCI image layout directory: one manifest per platform (each with its own config), under
    one image index, named `latest` in the layout. Layers are gzip-compressed, so each has a digest
    apart from its diff_id."""
    os.makedirs(os.path.join(layout, "blobs/sha256"), exist_ok=True)
    compressed = [_blob(layout, gzip.compress(layer, mtime=0)) for layer in layers]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    manifests = []
    for arch in platforms:
        config = json.loads(image_config(diff_ids, {"Env": [f"PLATFORM={arch}", *([env] if env else [])]}))
        config["architecture"] = arch
        config_blob = _blob(layout, json.dumps(config).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_blob},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob}
                               for blob in compressed]}
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "platform": {"os": "linux", "architecture": arch},
                          **_blob(layout, json.dumps(manifest).encode())})
    nested = _blob(layout, json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                       "manifests": manifests}).encode())
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", **nested,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


class FaultyProxy:
    """A proxy in front of the real registry that misbehaves on demand, to see each failure handled:
    `truncate` cuts blob bodies short (and closes the connection), `status` answers blob requests
    with that HTTP status, `media_type` rewrites manifests' Content-Type and mediaType, `throttle`
    slows blob bodies down to that many bytes a second. It counts the requests per path, so tests
    can see what was fetched and how often."""

    def __init__(self, upstream: str) -> None:
        import http.client
        import threading
        from collections import Counter
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.upstream = upstream
        self.truncate = False
        self.status = 0
        self.media_type = ""
        self.throttle = 0  # bytes per second for blob bodies; 0: as fast as it goes
        self.requests: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.requests[self.path] += 1
                blob = "/blobs/sha256:" in self.path
                if blob and proxy.status:
                    self.send_response(proxy.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                connection = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                connection.request("GET", self.path, headers=headers)
                answer = connection.getresponse()
                body = answer.read()
                connection.close()
                content_type = answer.getheader("Content-Type", "")
                if "/manifests/" in self.path and proxy.media_type:
                    document = json.loads(body)
                    document["mediaType"] = proxy.media_type
                    body, content_type = json.dumps(document).encode(), proxy.media_type
                self.send_response(answer.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if blob and proxy.truncate and len(body) > 1024:
                    self.wfile.write(body[:len(body) // 2])  # then the connection drops, mid-download
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if blob and proxy.throttle:
                    for start in range(0, len(body), 64 << 10):
                        self.wfile.write(body[start:start + (64 << 10)])
                        self.wfile.flush()
                        time.sleep((64 << 10) / proxy.throttle)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
