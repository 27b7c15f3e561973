"""What tests, benchmarks and the docs scripts share to drive a server or a browser: not
shipped with the dashboard."""
