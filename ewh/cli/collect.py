"""`ewh collect`: serve the collector (Segment Tracking API + engagement API) on uvicorn."""

from __future__ import annotations

import argparse
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command


@command("collect", "serve the HTTP event collector (Segment-compatible) into the landing zone")
def _collect(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8080, help="port, 1-65535 (8080)")
    parser.add_argument("--landing-dir", type=Path, default=None,
                        help="landing folder (EWH_LANDING_DIR or data/landing)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes; each writes its own landing files (1)")
    return _run


def port_number(text: str) -> int:
    """A TCP port to listen on: 1 to 65535. Anything else is refused here, before uvicorn
    would take 0 as "any free port" or fail on a number it cannot bind."""
    try:
        port = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def _run(args: argparse.Namespace) -> int:
    from ewh.collector.server import serve
    from ewh.collector.settings import CollectorSettings
    from ewh.common.settings import get_settings

    try:
        base = get_settings()
        if args.landing_dir is not None:
            base = base.model_copy(update={"landing_dir": args.landing_dir.resolve()})
        settings = CollectorSettings.from_settings(base)
    except ValueError as exc:
        raise OperationalError(str(exc)) from exc
    if not settings.write_keys:
        raise OperationalError("no write keys: set EWH_WRITE_KEYS (comma-separated)")
    print(f"collector on http://{args.host}:{args.port} -> {settings.landing_dir} "
          f"(consent policy {settings.consent_policy}; {len(settings.write_keys)} write, "
          f"{len(settings.read_keys)} read, {len(settings.admin_keys)} admin keys)", flush=True)
    serve(base, args.host, args.port, args.workers)
    return 0
