"""`python -m backend`: migrate, then serve the backend with uvicorn.

Settings come from flags, else `OBSERVER_BACKEND_DATABASE_URL` / `OBSERVER_BACKEND_TOKEN`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

import uvicorn

from backend.embedded import create_asgi_app
from backend.settings import DEFAULT_DATABASE_URL


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("OBSERVER_BACKEND_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="sqlite:///path or postgresql://user:password@host:port/name",
    )
    parser.add_argument("--token", default=os.environ.get("OBSERVER_BACKEND_TOKEN") or "")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def announce_generated_token(token: str) -> None:
    sys.stderr.write(
        "No OBSERVER_BACKEND_TOKEN or --token given; generated one for this run:\n"
        f"  {token}\n"
        f"Send it as 'Authorization: Token {token}', or set OBSERVER_BACKEND_TOKEN to keep it.\n"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    token = args.token
    if not token:
        token = secrets.token_urlsafe(32)
        announce_generated_token(token)

    app = create_asgi_app(args.database_url, token)
    # Django's ASGI handler has no lifespan support; "off" avoids a misleading log line.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, lifespan="off")


if __name__ == "__main__":
    main()
