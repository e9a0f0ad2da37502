"""The panel in a real JupyterLab, driven in headless Chromium (Playwright, Debian's Chromium)."""
