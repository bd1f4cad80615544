"""The demo provider: aimw's in-process model emulator (aimw.emulator), OpenAI Chat Completions."""

from aimw.emulator import MODEL
from aimw.providers import Provider

DEMO = Provider(
    name="demo",
    base_url="http://aimw-emulator",
    path="/v1/chat/completions",
    wire_format="openai_chat",
    default_model=MODEL,
)
