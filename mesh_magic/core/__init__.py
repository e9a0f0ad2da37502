"""The core: settings, requests, the HTTP edge, parsing, images, results, store, catalog, engine.

Nothing here imports IPython or ipywidgets; the rendering layer (`mesh_magic.render`)
and the front ends (`mesh_magic.magics`, `mesh_magic.widget_panel`, `mesh_magic.api`)
build on it. Modules are internal: the public API is the `mesh_magic` package.
"""
