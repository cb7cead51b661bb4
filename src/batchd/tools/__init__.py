"""Server tools that batchd runs itself, whatever the backend: web search, web fetch, code execution.

Empty for now; the layer exists so that its place in the import contract is fixed: tools sit
between the engine (which calls them around a backend) and the backends (which they call).
Each tool will be a module or package here, and the loop that offers them to a model as functions
its own module (see docs/architecture.md, "How to add a server tool").
"""
