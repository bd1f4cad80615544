"""The gateway's pure-ASGI middlewares, one per module (see DESIGN.md §1 for their order)."""
