"""Where clusterctl finds its control plane: --server, else SHOAL_SERVER, else the config file
(SHOAL_CONFIG, default ~/.config/shoal/config.yaml, `server: HOST:PORT`; `clusterctl up` writes it)."""

from __future__ import annotations

import os

from cli.client import CliError

EXIT_BAD_INPUT = 2
DEFAULT_STATE = "/var/lib/shoal/up"  # where `clusterctl up` keeps a local cluster


def config_path() -> str:
    if os.environ.get("SHOAL_CONFIG"):
        return os.environ["SHOAL_CONFIG"]
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "shoal", "config.yaml")


def server_configured(flag: str | None) -> bool:
    return bool(flag or os.environ.get("SHOAL_SERVER") or os.path.exists(config_path()))


def server_address(flag: str | None) -> str:
    if flag:
        return flag
    if os.environ.get("SHOAL_SERVER"):
        return os.environ["SHOAL_SERVER"]
    path = config_path()
    try:
        import yaml

        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise CliError("no control plane configured: pass --server HOST:PORT, set SHOAL_SERVER, or run "
                       f"`clusterctl up` (which writes {path})", EXIT_BAD_INPUT) from None
    except (OSError, ValueError) as e:
        raise CliError(f"{path}: cannot read the configuration: {e}", EXIT_BAD_INPUT) from None
    server = data.get("server") if isinstance(data, dict) else None
    if not isinstance(server, str) or not server:
        raise CliError(f"{path}: expected `server: HOST:PORT`", EXIT_BAD_INPUT)
    return server
