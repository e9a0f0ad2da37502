"""The rendering layer: how results, progress, tables and history look (HTML and text).

It reads the core's objects and never talks HTTP. `grid.render_result` is the
renderer the package installs for `ImageResult` display.
"""
