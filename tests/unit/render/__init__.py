"""Unit tests of the rendering layer: the HTML grid and the config/model tables."""
