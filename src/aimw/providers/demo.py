"""The demo provider: aimw's in-process model emulator (aimw.emulator), OpenAI Chat Completions."""

from aimw.emulator import MODEL
from aimw.providers import Provider
from aimw.translators.openai_chat import OpenAIChat

DEMO = Provider(name="demo", base_url="http://aimw-emulator", wire_format=OpenAIChat(), default_model=MODEL)
