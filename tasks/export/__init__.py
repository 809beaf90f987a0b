"""Artifacts in other formats and places: PEFT's own adapter format (``peft_format.py``), one ONNX graph with the
prefix baked in (``onnx_graph.py``), and the Hub (``python -m tasks.export push``).  ``python -m tasks.export --help``.
"""
