"""Project settings: Kedro defaults, the config hooks, the study config loader and the
session store that records the active env (see :mod:`attention_lab.session_env`)."""

from attention_lab.config_loader import StudyConfigLoader
from attention_lab.hooks import ConfigHooks
from attention_lab.session_env import EnvRecordingStore

HOOKS = (ConfigHooks(),)

SESSION_STORE_CLASS = EnvRecordingStore

CONFIG_LOADER_CLASS = StudyConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
