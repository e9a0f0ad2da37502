"""The engine: a background event loop with a sync facade (`loop`), the adaptive gate
(`limit`), per-call progress state (`progress`) and the fan-out of requests (`runner`).
"""
