"""A small token server for the registry tests: Docker's token authentication, as the registry
expects it (distribution's docs/spec/auth/token.md and jwt.md).

GET /token?service=S&scope=repository:NAME:ACTIONS, with or without Basic credentials, answers
`{"token": JWT}`. The JWT is RS256-signed by a key whose certificate the registry trusts
(`rootcertbundle`), carried in the header's x5c. Known users get the actions they ask for;
anyone else gets a token granting nothing, so the registry still refuses them. Signing uses the
openssl command line (no Python crypto library needed).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "shoal-test-registry"
ISSUER = "shoal-test-token-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, root: str, users: dict[str, str]) -> None:
        os.makedirs(root, exist_ok=True)
        self.key = os.path.join(root, "token.key")
        self.cert = os.path.join(root, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out",
                        self.cert, "-subj", "/CN=shoal-test-token", "-days", "2"], check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.users = users
        self.requests: list[tuple[str, str]] = []  # (user or "", scope)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = server.authenticate(self.headers.get("Authorization", ""))
                if user is None:
                    self.send_response(401)
                    self.end_headers()
                    return
                scope = query.get("scope", [""])[0]
                server.requests.append((user, scope))
                body = json.dumps({"token": server.token(user, scope), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def authenticate(self, header: str) -> str | None:
        """The user name, "" for anonymous, None for wrong credentials."""
        if not header.startswith("Basic "):
            return ""
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else None

    def token(self, user: str, scope: str) -> str:
        access = []
        if user and scope.count(":") == 2:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                                   check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def registry_auth(self) -> dict[str, object]:
        """The `auth` section of a docker-registry configuration that trusts this server."""
        return {"token": {"realm": self.realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": self.cert}}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
