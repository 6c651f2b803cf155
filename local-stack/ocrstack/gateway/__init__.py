"""A local OpenFaaS-compatible gateway: function routes, a durable async queue, and local function processes."""
