"""The server's routers, one module per kind of request."""
