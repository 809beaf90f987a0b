"""One frozen backbone, many tasks, one batch: the Python API (``engine.py``) and the HTTP server (``server.py``)."""
