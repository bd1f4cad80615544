"""Token rate limits and budgets (issue 12): aimw.rate_limiting and RateLimitMiddleware."""
