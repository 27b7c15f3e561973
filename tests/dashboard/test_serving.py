"""``python -m dashboard``: which server it starts, and the warning when it binds beyond loopback."""

from __future__ import annotations

import urllib.request

import pytest

import dashboard.app
from dashboard import __main__ as cli
from dashboard.selection import Selection
from tests.dashboard.conftest import start_dashboard, stop
from tests.support.endpoint import ask, callback_body, control_inputs, response_value


@pytest.fixture
def served(monkeypatch):
    """Run ``main`` without building an app or starting a server; record what it would serve."""
    calls = []
    monkeypatch.setattr(dashboard.app, "create_app", lambda env, conf_source=None: "app")
    monkeypatch.setattr(cli, "serve", lambda *args: calls.append(args))
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_binding_beyond_loopback_warns_that_the_study_is_readable(served, capsys, host):
    cli.main(["--host", host])
    err = capsys.readouterr().err
    assert err.startswith(f"warning: serving on {host}: anyone who can reach this machine")
    assert "can read the study" in err and served  # a warning, not a refusal


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_serves_without_a_warning(served, capsys, host):
    cli.main(["--host", host])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "server", "workers"),
    [
        ([], "dash", 1),
        (["--workers", "4"], "waitress", 4),
        (["--server", "waitress"], "waitress", 1),
    ],
)
def test_workers_above_one_or_server_waitress_serve_with_waitress(served, argv, server, workers):
    cli.main(["--port", "8123", *argv])
    assert served == [("app", "127.0.0.1", 8123, server, workers, False)]


@pytest.mark.parametrize(
    "argv",
    [["--workers", "0"], ["--server", "dash", "--workers", "2"], ["--workers", "2", "--debug"]],
)
def test_contradictory_serving_options_are_refused(served, capsys, argv):
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert "error:" in capsys.readouterr().err and served == []


@pytest.mark.slow
def test_waitress_serves_the_app_and_answers_a_bad_value_with_a_message(tmp_path, study):
    conf = tmp_path / "conf"  # a study with one variant and no artifacts yet
    (conf / "base").mkdir(parents=True)
    (conf / "local").mkdir()
    (conf / "base" / "catalog.yml").write_text("")
    (conf / "base" / "parameters.yml").write_text("variants: {a: {method: head}}\n")
    proc, url = start_dashboard(
        "--server", "waitress", "--workers", "2", "--conf-source", str(conf)
    )
    try:
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and page.headers["Server"] == "waitress"
        bad = Selection(a="nope", b="x", example="x", kind="x")
        body = callback_body(  # the callback map is the same for any study
            dashboard.app.create_app(data=study), "compare-graph.figure", control_inputs(bad)
        )
        figure = response_value(ask(url, body), "compare-graph", "figure")
        assert figure["layout"]["annotations"][0]["text"] == (
            "Unknown variant 'nope'; this study has: a."
        )
    finally:
        stop(proc)
