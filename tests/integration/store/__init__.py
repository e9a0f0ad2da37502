"""The image store through the front ends: cache on / --fresh / replay, history, write order."""
