"""The serving commands of `unified-assets`: `serve` (the HTTP prediction service over the home
folder) and `api-key add` (a key for it, shown once, its digest kept)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def cmd_api_key(args: argparse.Namespace) -> int:
    """Make an API key for `serve`: its digest is stored, the key printed once."""
    from unified_assets.defs.settings import Settings
    from unified_assets.lib.serving import api_keys

    home = Settings.from_env().home_path
    path = Path(args.file) if args.file else api_keys.default_path(home)
    key = api_keys.add(path)
    print(f"{key}\n(this key is shown once; its sha256 is in {path}; restart serve to use it)")
    return 0


def _settings_in_child():
    """The settings `serve` needs, read by a forked child while this process loads the service:
    Settings is a Dagster resource, and the serving process itself never loads Dagster (about
    110 MB resident, a second of start). Returns the function that waits for them; an invalid
    setting comes back as {"error": ...}."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, answer, leave
        os.close(read)
        try:
            from dataclasses import asdict

            from unified_assets.defs.settings import Settings

            settings = Settings.from_env()
            answer = {"home": str(settings.home_path), "lead_minutes": settings.lead_minutes(),
                      "alerts": asdict(settings.alert_channels())}
        except Exception as exc:  # whatever it is, the parent reports it and exits 2
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write, json.dumps(answer).encode())
        os._exit(0)
    os.close(write)

    def wait() -> dict:
        with os.fdopen(read, "rb") as pipe:
            answer = json.loads(pipe.read() or b'{"error": "the settings reader died"}')
        os.waitpid(pid, 0)
        return answer

    return wait


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve every promoted model over HTTP until interrupted."""
    if args.workers < 1:
        print(f"serve: --workers must be 1 or more, not {args.workers}", file=sys.stderr)
        return 2
    settings_read = _settings_in_child()
    from unified_assets.online import server  # from here on, the serving process's imports

    server.keep_out_unserved()
    metrics_dir = server.share_metrics(args.workers)
    # loaded while the child reads the settings, once, before any worker forks (the workers
    # share its pages)
    import unified_assets.online.app  # noqa: F401
    from unified_assets.lib.monitoring.alerts import Channels
    from unified_assets.lib.serving import api_keys
    from unified_assets.online.service import ServiceConfig

    settings = settings_read()
    if "error" in settings:
        print(f"serve: {settings['error']}", file=sys.stderr)
        return 2
    home = Path(settings["home"])
    keys_file = Path(args.api_keys_file) if args.api_keys_file else api_keys.default_path(home)
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
    config = ServiceConfig(home, settings["lead_minutes"], max_rows=args.max_rows,
                           max_body_bytes=args.max_body_bytes, body_timeout_s=args.body_timeout_s,
                           header_timeout_s=args.header_timeout_s, api_key_digests=digests,
                           alerts=Channels(**settings["alerts"]), metrics_dir=metrics_dir)
    print(f"API keys: {len(digests)} from {keys_file}" if digests else
          "API keys: none (every route is open)", flush=True)
    print(f"serving the promoted models of {home} on http://{args.host}:{args.port}"
          f" with {args.workers} worker(s) (docs at /docs)", flush=True)
    return server.serve(config, args.host, args.port, args.workers)
