"""Project settings: Kedro defaults, the config hooks, the study config loader and the
session store that records the active env (see :mod:`attention_lab.session_env`)."""

import os

from attention_lab.config_loader import StudyConfigLoader
from attention_lab.hooks import ConfigHooks
from attention_lab.session_env import EnvRecordingStore

HOOKS = (ConfigHooks(),)

SESSION_STORE_CLASS = EnvRecordingStore

# where the configuration lives when a tool does not pass `--conf-source` on to the sessions
# it opens (kedro-airflow's `create` reads airflow.yml through one of its own)
CONF_SOURCE = os.environ.get("ATTENTION_LAB_CONF_SOURCE", "conf")

CONFIG_LOADER_CLASS = StudyConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
