"""Project settings (Kedro defaults plus the config hooks)."""

from attention_lab.hooks import ConfigHooks

HOOKS = (ConfigHooks(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
