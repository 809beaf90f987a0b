"""GLUE and SuperGLUE tasks (one code base; ``tasks.superglue`` is a thin entry point into it)."""
