"""The HTTP wires. What every wire shares sits here: the services each view is handed
(services.py), API keys to workspaces (auth.py), the error renderer (errors.py), the JSON response
(responses.py), size-limited request bodies (bodies.py) and the access log (accesslog.py). Each wire
is a package beside the others: `anthropic/` serves /v1/messages/batches, /v1/messages and
/v1/models. `batchd.app` mounts them.
"""
