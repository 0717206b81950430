"""A client for the OCI distribution API (the protocol of Docker Hub, ghcr.io, Debian's docker-registry...).

Reference: the OCI distribution spec (pulling manifests and blobs) and Docker's token
authentication spec. A request answered 401 is retried once with what the `WWW-Authenticate`
challenge asks for: `Basic` credentials, or a `Bearer` token fetched from the challenge's realm
(with the credentials, when there are any) for its service and scope. Tokens are kept per scope.

HTTPS by default, verified against the system CAs plus `CERTS_DIR/<host:port>/ca.crt` (Docker's
certs.d layout). Registries marked insecure, and loopback ones, may fall back to plain HTTP when
the TLS handshake gets an HTTP answer, as Docker does; an insecure registry's certificate is not
checked, a loopback registry's is. Redirects (blob storage behind a CDN) are followed without the
registry's credentials.
"""

from __future__ import annotations

import base64
import functools
import http.client
import ipaddress
import json
import os
import re
import ssl
import urllib.parse
from dataclasses import dataclass, field

TIMEOUT = 30.0
MAX_MANIFEST = 4 << 20
MAX_REDIRECTS = 5
ACCEPT_MANIFESTS = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"))
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class PlainHttp(Exception):
    """The TLS handshake got a plain HTTP answer."""


class RegistryError(Exception):
    """One line naming the registry and what went wrong; `kind` is auth, not_found, network, registry
    or invalid (the answer broke the protocol or its digests)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@functools.lru_cache(maxsize=32)
def _tls_context(insecure: bool, ca: str, _ca_changed: int) -> ssl.SSLContext:
    """Made once per trust setting (and again when the CA file changes): loading the system CAs
    takes ~20 ms, which every blob's connection paid before."""
    context = ssl.create_default_context()
    if insecure:  # Docker's insecure registries: TLS if offered, but its certificate is not checked
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if ca:
        context.load_verify_locations(cafile=ca)
    return context


def is_loopback(host: str) -> bool:
    """`localhost:5000`, `127.0.0.1`, `[::1]:5000`: registries Docker reaches over plain HTTP."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name[1:name.find("]")] if name.startswith("[") else name
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass
class RegistryClient:
    host: str  # host[:port] of the API
    insecure: bool = False
    certs_dir: str = ""
    credentials: Credentials | None = None
    _tokens: dict[str, str] = field(default_factory=dict)

    scheme: str = "https"  # becomes "http" once a registry allowed plain HTTP turns out to speak it

    @property
    def may_use_http(self) -> bool:
        return self.insecure or is_loopback(self.host)

    def _context(self) -> ssl.SSLContext:
        ca = os.path.join(self.certs_dir, self.host, "ca.crt") if self.certs_dir else ""
        try:
            changed = os.stat(ca).st_mtime_ns if ca else 0
        except FileNotFoundError:
            ca, changed = "", 0
        return _tls_context(self.insecure, ca, changed)

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=TIMEOUT, context=self._context())
        return http.client.HTTPConnection(netloc, timeout=TIMEOUT)

    def _send(self, url: str, headers: dict[str, str], method: str = "GET",
              body: bytes | None = None) -> http.client.HTTPResponse:
        """One request, redirects followed; credentials only go to the registry itself."""
        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            connection = self._connect(parts.scheme, parts.netloc)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as e:
                connection.close()
                if (isinstance(e, ssl.SSLError) and not isinstance(e, ssl.SSLCertVerificationError)
                        and parts.netloc == self.host and self.may_use_http):
                    raise PlainHttp() from None
                reason = e.reason if isinstance(e, ssl.SSLError) else e
                if isinstance(e, ssl.SSLCertVerificationError):
                    reason = (f"its certificate is not trusted ({e.verify_message}): trust its CA with "
                              f"{self.certs_dir or 'CERTS_DIR'}/{parts.netloc}/ca.crt, or mark it --insecure-registry")
                raise RegistryError("network", f"cannot reach registry {parts.netloc}: {reason}") from None
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                location = urllib.parse.urljoin(url, response.getheader("Location", ""))
                response.close()
                if urllib.parse.urlsplit(location).netloc != self.host:
                    headers = {k: v for k, v in headers.items() if k != "Authorization"}
                url = location
                continue
            return response
        raise RegistryError("registry", f"registry {self.host}: too many redirects")

    def get(self, path: str, scope: str, accept: str = "") -> http.client.HTTPResponse:
        """An authenticated GET of an API path; errors are raised, a 200 is returned to be read."""
        return self.request("GET", path, scope, {"Accept": accept} if accept else {})

    def request(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None,
                body: bytes | None = None, expect: tuple[int, ...] = (200,)) -> http.client.HTTPResponse:
        """An authenticated request (a path, or an absolute URL the registry handed out, such as an
        upload's Location); a status outside `expect` is raised as a RegistryError."""
        headers = dict(headers or {})
        if scope in self._tokens:
            headers["Authorization"] = self._tokens[scope]
        url = path if path.startswith(("http://", "https://")) else f"{self.scheme}://{self.host}{path}"
        try:
            response = self._send(url, headers, method, body)
        except PlainHttp:
            self.scheme = "http"  # a registry allowed plain HTTP answered TLS with HTTP: as Docker, fall back
            url = "http://" + url.removeprefix("https://")
            response = self._send(url, headers, method, body)
        if response.status == 401 and "Authorization" not in headers:
            challenge = response.getheader("WWW-Authenticate", "")
            response.read()
            self._tokens[scope] = self._authorize(challenge, scope)
            response = self._send(url, {**headers, "Authorization": self._tokens[scope]}, method, body)
        if response.status in expect:
            return response
        raise self._failure(response, urllib.parse.urlsplit(url).path)

    def _authorize(self, challenge: str, scope: str) -> str:
        scheme, _, params_text = challenge.partition(" ")
        if scheme.lower() == "basic":
            if self.credentials is None:
                raise RegistryError("auth", f"registry {self.host} requires a login (clusterctl registry login "
                                            f"{self.host})")
            return self.credentials.basic
        if scheme.lower() != "bearer":
            raise RegistryError("auth", f"registry {self.host}: unsupported authentication {challenge!r}")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        realm = params.get("realm")
        if not realm:
            raise RegistryError("auth", f"registry {self.host}: bearer challenge without a realm")
        query = {"service": params.get("service", ""), "scope": params.get("scope", scope)}
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        headers = {"Authorization": self.credentials.basic} if self.credentials else {}
        response = self._send(url, headers)
        body = response.read(MAX_MANIFEST)
        if response.status in (401, 403):
            raise RegistryError("auth", f"registry {self.host}: the token service refused "
                                        f"{'the credentials' if self.credentials else 'anonymous access'} "
                                        f"({response.status})")
        if response.status != 200:
            raise RegistryError("registry", f"registry {self.host}: token service answered {response.status}")
        try:
            answer = json.loads(body)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError("invalid", f"registry {self.host}: the token service sent no token")
        return f"Bearer {token}"

    def _failure(self, response: http.client.HTTPResponse, path: str) -> RegistryError:
        body = response.read(64 << 10)
        detail = ""
        try:
            errors = json.loads(body).get("errors") or []
            detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
        except (ValueError, AttributeError):
            detail = body.decode(errors="replace").strip()[:200]
        what = f"registry {self.host} answered {response.status} for {path}" + (f" ({detail})" if detail else "")
        if response.status in (401, 403):
            hint = "" if self.credentials else f"; log in with clusterctl registry login {self.host}"
            return RegistryError("auth", f"{what}: access denied{hint}")
        if response.status == 404 and not detail.startswith("BLOB_UPLOAD"):
            return RegistryError("not_found", what)
        return RegistryError("registry", what)

    # ---- the distribution API ------------------------------------------------------------------
    def manifest(self, repository: str, ref: str) -> tuple[bytes, str]:
        """The manifest (or index) bytes exactly as served, and their media type."""
        response = self.get(f"/v2/{repository}/manifests/{ref}", f"repository:{repository}:pull",
                            accept=ACCEPT_MANIFESTS)
        with response:
            body = response.read(MAX_MANIFEST + 1)
            media_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
        if len(body) > MAX_MANIFEST:
            raise RegistryError("invalid", f"registry {self.host}: manifest {repository}:{ref} is over 4 MiB")
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            try:
                media_type = json.loads(body).get("mediaType", "")
            except (ValueError, AttributeError):
                media_type = ""
        return body, media_type

    def blob(self, repository: str, digest: str) -> BlobStream:
        """A stream of the blob; the caller verifies it against the digest while reading."""
        response = self.get(f"/v2/{repository}/blobs/{digest}", f"repository:{repository}:pull")
        return BlobStream(response, self.host)


class BlobStream:
    """A blob response whose read errors (the registry gone mid-download) become RegistryErrors."""

    def __init__(self, response: http.client.HTTPResponse, host: str) -> None:
        self.response = response
        self.host = host

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.response.read(size)
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            raise RegistryError("network", f"registry {self.host}: download interrupted: {e}") from None
        if size != 0 and not data and self.response.length:  # closed before Content-Length was reached
            raise RegistryError("network", f"registry {self.host}: download interrupted "
                                           f"({self.response.length} bytes missing)")
        return data

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.response.close()
