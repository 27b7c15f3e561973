"""Draw docs/images/airflow_dag.png: the study's DAG in Airflow's own graph view.

Writes the DAG with kedro-airflow (as `make airflow-dag` does), serves Airflow's UI from a
scratch AIRFLOW_HOME on 127.0.0.1, and photographs the graph with headless chromium.
Needs `make setup-airflow` and `make setup-test`. Usage: python docs/airflow_dag_picture.py [ENV]
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tests.support.chromium import launch  # noqa: E402
from tests.support.endpoint import wait_until_answers  # noqa: E402

AIRFLOW = PROJECT / ".venv-airflow/bin/airflow"
KEDRO = Path(sys.executable).with_name("kedro")
PICTURE = PROJECT / "docs/images/airflow_dag.png"


def main(env: str = "local") -> None:
    with tempfile.TemporaryDirectory(prefix="airflow-picture-") as home:
        dags = Path(home) / "dags"
        subprocess.run(
            [
                str(KEDRO), "airflow", "create", f"--env={env}", "--group-by=namespace",
                "--jinja-file=deploy/airflow/dag_template.j2", f"--target-dir={dags}",
                f"--params=project_path={PROJECT}",
            ],
            cwd=PROJECT, check=True, capture_output=True,
        )  # fmt: skip
        airflow_env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # no log-in on loopback
        }
        for command in (["db", "migrate"], ["dags", "reserialize"]):
            subprocess.run(
                [str(AIRFLOW), *command], env=airflow_env, check=True, capture_output=True
            )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=airflow_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            if not wait_until_answers(url, server, 120):
                raise RuntimeError("Airflow's API server did not start")
            photograph(f"{url}/dags/attention_lab", PICTURE)
        finally:
            os.killpg(server.pid, signal.SIGTERM)  # our own process group only
            server.wait(timeout=30)
    print(f"wrote {PICTURE.relative_to(PROJECT)}")


def photograph(url: str, target: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.goto(url)
        page.get_by_role("button", name="Graph").first.click()
        page.wait_for_selector(".react-flow__node", timeout=60000)
        page.wait_for_timeout(1500)  # let the layout settle
        page.screenshot(path=str(target))
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
