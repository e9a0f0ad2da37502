"""The widget panel driven from code against the test server."""
