"""The local OpenFaaS-compatible stack: backing services, the gateway, and the CLI that starts them."""
