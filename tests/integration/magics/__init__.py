"""The magics in a real IPython shell: options, errors, config, fan-out, progress, streaming."""
