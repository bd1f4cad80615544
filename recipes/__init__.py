"""Recipes: one module per provider, each only assembling aimw's middlewares into ``app``."""
