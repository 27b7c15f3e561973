"""Start the dashboard: ``python -m dashboard [--env ENV] [--host 127.0.0.1] [--port 8050]``."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
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
    args = parser.parse_args(argv)

    from dashboard.app import create_app

    app = create_app(args.env, conf_source=args.conf_source)
    print(
        f"Attention Lab dashboard on http://{args.host}:{args.port}/  (Ctrl+C to stop)", flush=True
    )
    app.run(host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    main()
