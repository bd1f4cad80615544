"""The fake model's answer: what the fake upstream sends and what the validator expects.

The answer is a pure function of the chunk count, so the load generator knows the exact
text, finish reason and usage every target must hand back without talking to the fake.
The pieces mix ASCII, non-ASCII (UTF-8 on the wire), JSON escapes (quotes, backslash,
newline, tab) so that a gateway that mangles text fails validation.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CHUNKS = 200
TOKENS_PER_CHUNK = 3  # what the usage reports for each chunk
PROMPT_TOKENS = 17  # what the usage reports for the (fixed) prompt
MODEL = "bench-model"

_WORDS = ("alpha", "beta", "gamma", "délta", "ε-psilon", 'say "hi"', "back\\slash", "tab\there", "end.\n", "日本")


def chunk_text(index: int) -> str:
    """The text of chunk ``index`` (0-based): a few tokens, e.g. ``"gamma t2 "``."""
    return f"{_WORDS[index % len(_WORDS)]} t{index} "


@dataclass(frozen=True, slots=True)
class Answer:
    """The fake model's answer.

    chunks: the text pieces, one per streamed chunk; the non-streaming answer is their join.
    prompt_tokens, completion_tokens: the usage the fake reports (tokens).
    finish_reason: OpenAI's; stop_reason: what an Anthropic gateway must turn it into.
    """

    chunks: tuple[str, ...]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    stop_reason: str = "end_turn"

    @classmethod
    def of(cls, chunk_count: int = DEFAULT_CHUNKS) -> Answer:
        if chunk_count < 1:
            raise ValueError(f"chunk_count must be at least 1, got {chunk_count}")
        return cls(
            chunks=tuple(chunk_text(index) for index in range(chunk_count)),
            prompt_tokens=PROMPT_TOKENS,
            completion_tokens=TOKENS_PER_CHUNK * chunk_count,
        )

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
