"""The HTTP edge: the handler wrapper, authentication, rate limits, reading uploads."""
