"""The Attention Lab dashboard: compare attention heatmaps across variants (reads the Kedro catalog)."""
