"""Start the dashboard: ``python -m dashboard [--env ENV] [--host 127.0.0.1] [--port 8050]``.

``--workers 1`` (the default) runs Dash's development server, as ``app.run`` does. ``--workers N``
with N > 1, or ``--server waitress``, serves the same app with waitress, a production WSGI
server, answering up to N requests at once. Waitress runs them as N *threads* of one process
(it has no worker processes), so figures built in Python still share one CPU core through the
GIL; the threads keep slow requests from queueing the quick ones.
"""

from __future__ import annotations

import argparse
import sys

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _workers(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attention-lab-dashboard", description="Compare attention heatmaps across variants."
    )
    parser.add_argument(
        "--env",
        default=None,
        help="Kedro env whose catalog to read (default: local, i.e. the base study)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument(
        "--conf-source",
        default=None,
        help="another configuration folder (default: the project's conf/)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="Dash debug mode (reloader, error overlay)"
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="requests served at once (default 1: Dash's development server); more than 1 "
        "serves with waitress, which runs them as threads of one process",
    )
    parser.add_argument(
        "--server",
        choices=("dash", "waitress"),
        default=None,
        help="dash (development server) or waitress (default: waitress when --workers > 1)",
    )
    return parser


def exposure_warning(host: str) -> str | None:
    """What binding ``host`` exposes, when it is not this machine's loopback interface."""
    if host in LOOPBACK:
        return None
    return (
        f"warning: serving on {host}: anyone who can reach this machine on the network can read "
        "the study (probe texts, attention maps, metrics). The dashboard has no login; "
        "use --host 127.0.0.1 unless that is what you want."
    )


def serve(app, host: str, port: int, server: str = "dash", workers: int = 1, debug=False):
    """Serve a Dash ``app``: the development server, or waitress with ``workers`` threads."""
    where = f"http://{host}:{port}/"
    if server == "dash":
        print(f"Attention Lab dashboard on {where}  (Ctrl+C to stop)", flush=True)
        app.run(host=host, port=port, debug=debug)
        return
    import waitress

    print(f"Attention Lab dashboard on {where}  (waitress, {workers} threads)", flush=True)
    waitress.serve(app.server, host=host, port=port, threads=workers)


def main(argv: list[str] | None = None) -> None:
    cli = parser()
    args = cli.parse_args(argv)
    server = args.server or ("waitress" if args.workers > 1 else "dash")
    if server == "dash" and args.workers > 1:
        cli.error("--workers above 1 needs waitress (leave out --server dash)")
    if server == "waitress" and args.debug:
        cli.error("--debug needs Dash's development server (--workers 1)")
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)

    from dashboard.app import create_app

    app = create_app(args.env, conf_source=args.conf_source)
    serve(app, args.host, args.port, server, args.workers, args.debug)


if __name__ == "__main__":
    main()
