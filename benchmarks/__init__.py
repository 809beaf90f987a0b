"""Benchmarks of the methods: suites and studies declared as data (``suites.py``, ``studies.py``), run through
the task CLIs, stored as JSON and rendered as Markdown tables and plots; ``python -m benchmarks --help``."""
