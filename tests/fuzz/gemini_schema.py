"""What Gemini's ``generateContent`` accepts as a request body, strictly.

Source: Google's API reference, "generateContent" (the body: ``contents``, ``systemInstruction``,
``tools``, ``toolConfig``, ``generationConfig``), "Content" (role ``user`` or ``model``, parts),
"Part" (one data field: text, inlineData, fileData, functionCall, functionResponse; with
``thought`` and ``thoughtSignature``), "FunctionDeclaration" (a name starts with a letter or
an underscore, then letters, digits, ``_ . : -``, 64 characters at most;
``parametersJsonSchema`` in the JSON Schema subset listed under "GenerationConfig"
``responseJsonSchema``), "FunctionCallingConfig" (mode AUTO, ANY, NONE; allowedFunctionNames
only with ANY), "GenerationConfig" (maxOutputTokens within the model's limit, 65536 on Gemini 2.5;
temperature 0-2, topP 0-1, topK positive, at most 5 stopSequences) and
"ThinkingConfig"; the Gemini API docs, "Function calling" (a model turn's function calls
are answered, in order, by the function responses of the user turn that follows) and
"Thinking" (thinkingBudget 0-24576 on Gemini 2.5 Flash, spent from maxOutputTokens).

The Structs forbid unknown fields, so an Anthropic-only field that leaked fails too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

FunctionName = Annotated[str, Meta(pattern=r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")]
NonEmpty = Annotated[str, Meta(min_length=1)]
JsonType = Literal["string", "number", "integer", "boolean", "object", "array", "null"]
MAX_THINKING_BUDGET = 24576  # tokens, Gemini 2.5 Flash
MAX_OUTPUT_TOKENS = 65536  # tokens, Gemini 2.5 ("the supported range is from 1 (inclusive) to 65537 (exclusive)")


class _Strict(Struct, forbid_unknown_fields=True, omit_defaults=True, rename="camel"):
    pass


class Schema(_Strict):
    """``parametersJsonSchema``: only the keywords Gemini documents, all the way down."""

    id: str | UnsetType = field(default=UNSET, name="$id")
    defs: dict[str, Schema] | UnsetType = field(default=UNSET, name="$defs")
    ref: str | UnsetType = field(default=UNSET, name="$ref")
    anchor: str | UnsetType = field(default=UNSET, name="$anchor")
    type: JsonType | Annotated[list[JsonType], Meta(min_length=1)] | UnsetType = UNSET
    format: str | UnsetType = UNSET
    title: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    enum: Annotated[list[str | int | float], Meta(min_length=1)] | UnsetType = UNSET
    items: Schema | bool | UnsetType = UNSET
    prefix_items: list[Schema] | UnsetType = UNSET
    min_items: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    max_items: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    minimum: int | float | UnsetType = UNSET
    maximum: int | float | UnsetType = UNSET
    any_of: list[Schema] | UnsetType = UNSET
    one_of: list[Schema] | UnsetType = UNSET
    properties: dict[str, Schema] | UnsetType = UNSET
    additional_properties: Schema | bool | UnsetType = UNSET
    required: list[str] | UnsetType = UNSET
    property_ordering: list[str] | UnsetType = UNSET


class Blob(_Strict):
    mime_type: NonEmpty
    data: NonEmpty


class FileData(_Strict):
    file_uri: NonEmpty
    mime_type: NonEmpty | UnsetType = UNSET


class FunctionCall(_Strict):
    name: FunctionName
    args: dict[str, Any]


class FunctionResponse(_Strict):
    name: FunctionName
    response: Annotated[dict[str, Any], Meta(min_length=1)]


class Part(_Strict):
    text: str | UnsetType = UNSET
    inline_data: Blob | UnsetType = UNSET
    file_data: FileData | UnsetType = UNSET
    function_call: FunctionCall | UnsetType = UNSET
    function_response: FunctionResponse | UnsetType = UNSET
    thought: bool | UnsetType = UNSET
    thought_signature: NonEmpty | UnsetType = UNSET


class Content(_Strict):
    role: Literal["user", "model"]
    parts: Annotated[list[Part], Meta(min_length=1)]


class TextPart(_Strict):
    text: NonEmpty


class SystemInstruction(_Strict):
    parts: Annotated[list[TextPart], Meta(min_length=1)]


class FunctionDeclaration(_Strict):
    name: FunctionName
    description: str | UnsetType = UNSET
    parameters_json_schema: Schema | UnsetType = UNSET


class Tool(_Strict):
    function_declarations: Annotated[list[FunctionDeclaration], Meta(min_length=1)]


class FunctionCallingConfig(_Strict):
    mode: Literal["AUTO", "ANY", "NONE"]
    allowed_function_names: Annotated[list[str], Meta(min_length=1)] | UnsetType = UNSET


class ToolConfig(_Strict):
    function_calling_config: FunctionCallingConfig


class ThinkingConfig(_Strict):
    include_thoughts: bool | UnsetType = UNSET
    thinking_budget: Annotated[int, Meta(ge=0, le=MAX_THINKING_BUDGET)] | UnsetType = UNSET


class GenerationConfig(_Strict):
    max_output_tokens: Annotated[int, Meta(ge=1, le=MAX_OUTPUT_TOKENS)] | UnsetType = UNSET
    temperature: Annotated[float, Meta(ge=0, le=2)] | UnsetType = UNSET
    top_p: Annotated[float, Meta(ge=0, le=1)] | UnsetType = UNSET
    top_k: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    stop_sequences: Annotated[list[NonEmpty], Meta(min_length=1, max_length=5)] | UnsetType = UNSET
    thinking_config: ThinkingConfig | UnsetType = UNSET


class GenerateContentRequest(_Strict):
    contents: Annotated[list[Content], Meta(min_length=1)]
    system_instruction: SystemInstruction | UnsetType = UNSET
    tools: Annotated[list[Tool], Meta(min_length=1, max_length=1)] | UnsetType = UNSET
    tool_config: ToolConfig | UnsetType = UNSET
    generation_config: GenerationConfig | UnsetType = UNSET


_decoder = msgspec.json.Decoder(GenerateContentRequest)
_DATA = ("text", "inline_data", "file_data", "function_call", "function_response")


def assert_gemini_request(body: bytes) -> GenerateContentRequest:
    """``body`` as Gemini accepts it (the decoded request), else AssertionError saying why."""
    try:
        request = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise AssertionError(f"not a generateContent request: {exc}") from None
    for index, content in enumerate(request.contents):
        if index:
            assert content.role != request.contents[index - 1].role, f"contents[{index}]: roles do not alternate"
        for part in content.parts:
            _assert_part(part, content.role, f"contents[{index}]")
    _assert_calls_answered(request.contents)
    names = [d.name for tool in request.tools or () for d in tool.function_declarations]
    assert len(names) == len(set(names)), f"function names repeat: {names}"
    for tool in request.tools or ():
        for declaration in tool.function_declarations:
            schema = declaration.parameters_json_schema
            if not isinstance(schema, UnsetType):
                assert schema.type == "object", f"{declaration.name}: parameters are not an object schema"
                _assert_schema(schema, declaration.name)
    if not isinstance(request.tool_config, UnsetType):
        config = request.tool_config.function_calling_config
        assert names or config.mode != "ANY", "mode ANY without functions"
        if not isinstance(config.allowed_function_names, UnsetType):
            assert config.mode == "ANY", "allowedFunctionNames without mode ANY"
            assert set(config.allowed_function_names) <= set(names), "allowedFunctionNames names no function"
    generation = request.generation_config
    if not isinstance(generation, UnsetType) and not isinstance(generation.thinking_config, UnsetType):
        budget, limit = generation.thinking_config.thinking_budget, generation.max_output_tokens
        if not isinstance(budget, UnsetType) and not isinstance(limit, UnsetType):
            assert budget < limit, "thinkingBudget leaves no room for the answer in maxOutputTokens"
    return request


def _assert_part(part: Part, role: str, where: str) -> None:
    data = [name for name in _DATA if not isinstance(getattr(part, name), UnsetType)]
    assert len(data) == 1, f"{where}: a part holds exactly one data field, not {data}"
    if not isinstance(part.thought_signature, UnsetType) or not isinstance(part.thought, UnsetType):
        assert role == "model", f"{where}: thoughts and signatures go on model parts only"
    if not isinstance(part.thought, UnsetType):
        assert part.thought is True and isinstance(part.text, str), f"{where}: a thought is a text part"
    if isinstance(part.text, str):
        assert part.text or not isinstance(part.thought_signature, UnsetType), f"{where}: empty text part"
    if not isinstance(part.function_call, UnsetType):
        assert role == "model", f"{where}: functionCall in a user turn"
    if not isinstance(part.function_response, UnsetType):
        assert role == "user", f"{where}: functionResponse in a model turn"


def _assert_calls_answered(contents: list[Content]) -> None:
    """Each model turn's function calls answered by the next turn (a user turn), with as
    many function responses, of the same names, in the same order; none elsewhere."""
    calls: list[str] = []
    for index, content in enumerate(contents):
        responses = [p.function_response.name for p in content.parts if not isinstance(p.function_response, UnsetType)]
        assert responses == calls, f"contents[{index}]: responses {responses} for calls {calls}"
        calls = [p.function_call.name for p in content.parts if not isinstance(p.function_call, UnsetType)]
    assert not calls, f"the last model turn's calls {calls} have no responses"


def _assert_schema(schema: Schema | bool, where: str) -> None:
    """``required`` names properties the schema has, all the way down."""
    if isinstance(schema, bool):
        return
    properties = schema.properties if not isinstance(schema.properties, UnsetType) else {}
    if not isinstance(schema.required, UnsetType):
        assert set(schema.required) <= set(properties), f"{where}: required {schema.required} are not properties"
    children: list[Schema | bool] = [*properties.values()]
    for value in (schema.items, schema.additional_properties):
        if not isinstance(value, UnsetType):
            children.append(value)
    for group in (schema.any_of, schema.one_of, schema.prefix_items):
        if not isinstance(group, UnsetType):
            children.extend(group)
    if not isinstance(schema.defs, UnsetType):
        children.extend(schema.defs.values())
    for child in children:
        _assert_schema(child, where)
