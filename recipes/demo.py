"""Claude Code -> aimw -> the built-in model emulator: no keys, no network.

hypercorn recipes.demo:app
"""

from aimw import Settings, translated_gateway
from aimw.emulator import EmulatorTransport
from aimw.providers.demo import DEMO

settings = Settings.from_env()
app = translated_gateway(DEMO, settings, secret=None, transport=EmulatorTransport())
