"""aimw's benchmark: a fast fake OpenAI upstream, a closed-loop load generator with a
response validator, and a runner that measures aimw side by side with a direct call, a
plain pass-through and LiteLLM on loopback. Run it with ``bench/run.sh`` (or
``python -m bench``); see bench/README.md. Never run as tests.
"""
