"""The serving commands of `unified-assets`: `serve` (the HTTP prediction service over the home
folder) and `api-key add` (a key for it, shown once, its digest kept)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def cmd_api_key(args: argparse.Namespace) -> int:
    """Make an API key for `serve`: its digest is stored, the key printed once."""
    from unified_assets.defs.resources import Settings
    from unified_assets.lib.serving import api_keys

    home = Settings.from_env().home_path
    path = Path(args.file) if args.file else api_keys.default_path(home)
    key = api_keys.add(path)
    print(f"{key}\n(this key is shown once; its sha256 is in {path}; restart serve to use it)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve every promoted model over HTTP until interrupted."""
    from unified_assets.defs.resources import Settings
    from unified_assets.lib.serving import api_keys
    from unified_assets.online.app import serve
    from unified_assets.online.service import ServiceConfig

    settings = Settings.from_env()
    keys_file = Path(args.api_keys_file) if args.api_keys_file else api_keys.default_path(
        settings.home_path)
    try:
        digests = api_keys.load(keys_file)
    except ValueError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    if not digests and args.host not in LOOPBACK and not args.no_auth:
        print(f"serve: {args.host} is reachable from other machines and no API key is set: add "
              "one with `unified-assets api-key add` (or pass --no-auth to serve without, "
              "behind a gateway that authenticates)", file=sys.stderr)
        return 2
    config = ServiceConfig(settings.home_path, settings.lead_minutes(), max_rows=args.max_rows,
                           max_body_bytes=args.max_body_bytes, body_timeout_s=args.body_timeout_s,
                           header_timeout_s=args.header_timeout_s,
                           api_key_digests=digests, alerts=settings.alert_channels())
    print(f"API keys: {len(digests)} from {keys_file}" if digests else
          "API keys: none (every route is open)", flush=True)
    print(f"serving the promoted models of {settings.home_path} on http://{args.host}:{args.port}"
          " (docs at /docs)", flush=True)
    serve(config, host=args.host, port=args.port)
    return 0
