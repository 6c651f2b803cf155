"""One module per backing service: MySQL, MinIO, Redis, and the hand-off to the gateway's queue."""
