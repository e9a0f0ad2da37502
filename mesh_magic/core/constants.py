"""Constants of the core in one place: hosts, limits, timeouts and retry policy numbers."""

from __future__ import annotations

from .._version import __version__

DEFAULT_BASE_URL = "https://api.meshapi.ai"
# base_url="offline" (or MESHAPI_BASE_URL=offline) selects the bundled offline backend.
OFFLINE = "offline"
# The host the offline backend answers on inside its ASGI transport (never a real socket).
OFFLINE_ROOT = "http://offline.meshapi.invalid"
KEY_ENV_VARS = ("MESHAPI_API_KEY", "MESH_API_KEY")
ALLOW_HTTP_ENV = "MESHIMG_ALLOW_INSECURE_HTTP"
USER_AGENT = f"mesh-magic/{__version__}"

# -- timeouts (seconds) -------------------------------------------------------------------
DEFAULT_TIMEOUT = 180.0
MODEL_LIST_TIMEOUT = 60.0
DOWNLOAD_TIMEOUT = 120.0
# How long an interrupted call waits for its tasks to wind down before giving up on them.
CANCEL_GRACE = 0.5

# -- retries ------------------------------------------------------------------------------
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# The default budget of waits between one request's retries (the max_retry_wait setting's default).
MAX_RETRY_WAIT = 20.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
# A bulk run re-queues a rate-limited request only when the server asks for a short wait.
MAX_RATE_LIMIT_WAIT = 60.0

# -- sizes --------------------------------------------------------------------------------
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_ERROR_BODY = 1024 * 1024
MAX_CONNECTIONS = 64
MAX_KEEPALIVE = 32
# The largest image decoded: the biggest size a request may ask for (8192x8192). Checked
# from the header before any pixel is decoded, so a decompression bomb is refused unread.
MAX_IMAGE_PIXELS = 8192 * 8192
# A PNG up to this size is checked on the event loop (well under a millisecond); a bigger one,
# or another format (decoded in full), in a worker thread, so it does not hold up other requests.
INLINE_CHECK_BYTES = 256 * 1024
# The latest `created` time believed (the last second of 9999): date arithmetic stays in range.
MAX_TIMESTAMP = 253_402_300_799


def max_body_bytes(n: int) -> int:
    """Largest JSON body accepted: room for n base64 images, but not unbounded."""
    return 16 * 1024 * 1024 + n * 48 * 1024 * 1024
