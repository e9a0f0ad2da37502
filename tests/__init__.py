"""The test suite: unit/, integration/, system/, reliability/; shared helpers in support/."""
