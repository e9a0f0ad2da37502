"""The Python API: generate, agenerate, generate_many, Ctrl-C without a kernel, streaming."""
