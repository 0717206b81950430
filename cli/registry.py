"""`clusterctl registry login|logout`: credentials in Docker's own config file, so both tools share them.

The file is `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), `auths.<registry>.auth`
holding base64 `user:password`, as `docker login` writes it (mode 0600). `clusterctl image pull`
sends the stored credentials for the image's registry along with the request, as the Docker CLI
does; agents pulling on their own use their `--registry-auth-file`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
from typing import Any

from cli.client import CliError

DOCKER_HUB = "docker.io"
HUB_KEY = "https://index.docker.io/v1/"  # where docker login files Docker Hub's credentials


def config_file() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def _load() -> dict[str, Any]:
    try:
        with open(config_file()) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise CliError(f"{config_file()}: cannot read it: {e}") from None
    return data if isinstance(data, dict) else {}


def _key(registry: str) -> str:
    return HUB_KEY if registry in (DOCKER_HUB, "index.docker.io", "registry-1.docker.io") else registry


def registry_of(image: str) -> str:
    """The registry an image reference names, by Docker's rule (else Docker Hub)."""
    first, slash, _ = image.partition("/")
    return first if slash and ("." in first or ":" in first or first == "localhost") else DOCKER_HUB


def stored_login(registry: str) -> tuple[str, str] | None:
    entry = (_load().get("auths") or {}).get(_key(registry))
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    return user, password


def cmd_login(args: argparse.Namespace) -> int:
    user = args.username or input("Username: ")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass("Password: ")
    if not user or not password:
        raise CliError("username and password are required", 2)
    data = _load()
    data.setdefault("auths", {})[_key(args.registry)] = {"auth": base64.b64encode(f"{user}:{password}".encode())
                                                         .decode()}
    _save(data)
    print(f"Credentials for {args.registry} stored in {config_file()} (checked on the next pull)")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    data = _load()
    if (data.get("auths") or {}).pop(_key(args.registry), None) is None:
        raise CliError(f"not logged in to {args.registry}")
    _save(data)
    print(f"Removed the credentials for {args.registry}")
    return 0


def _save(data: dict[str, Any]) -> None:
    path = config_file()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = path + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        json.dump(data, f, indent=1)
    os.replace(temporary, path)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    registry = commands.add_parser("registry", help="registry credentials (Docker's config.json)")
    verbs = registry.add_subparsers(dest="verb", required=True, metavar="{login,logout}")
    login = verbs.add_parser("login", help="store credentials for a registry")
    login.add_argument("registry", nargs="?", default=DOCKER_HUB)
    login.add_argument("-u", "--username")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.set_defaults(handler=cmd_login, target="local")
    logout = verbs.add_parser("logout", help="forget a registry's credentials")
    logout.add_argument("registry", nargs="?", default=DOCKER_HUB)
    logout.set_defaults(handler=cmd_logout, target="local")
