"""Unit tests, one file per core module (no sockets except unit/server/): MockTransport, tmp_path."""
