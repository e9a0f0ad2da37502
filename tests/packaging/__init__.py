"""The package as users get it: the built wheel, installed into a fresh venv with pip."""
