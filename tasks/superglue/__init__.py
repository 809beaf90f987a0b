"""SuperGLUE entry point; the code lives in tasks.glue."""
