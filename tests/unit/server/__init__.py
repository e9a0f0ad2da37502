"""The MeshAPI-compatible test server itself, over real loopback HTTP and in-process."""
