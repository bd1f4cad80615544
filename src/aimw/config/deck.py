"""deck files (Kong's declarative configuration, marked by ``_format_version``), read for the
plugins aimw replaces, as Kong's Claude Code guides configure them:

- ``ai-proxy-advanced``: its ``config`` is the document (GatewayConfig);
- ``ai-proxy``: one target: its ``route_type``, ``auth``, ``model`` and ``logging`` (and any
  other field, so that a typo is named) make ``targets[0]``; its ``llm_format``,
  ``max_request_body_size``, ``model_name_header``, ``response_streaming`` and
  ``genai_category`` the top level;
- ``file-log``: its ``config.path`` is ``log.path`` (``reopen`` is accepted: aimw's log
  follows a rotated file anyway);
- ``pre-function``: only the guides' snippet that removes ``model`` from the request body
  (whatever its spacing, any body size limit), read as ``strip_model``; aimw runs no Lua.

Exactly one ai-proxy or ai-proxy-advanced. Plugins are read from the top-level ``plugins``
and from those of ``services``, their ``routes``, and ``routes`` (aimw serves every path
alike); a plugin with ``enabled: false`` is skipped, any other plugin is refused naming it.
Nothing else of the file is read (services' URLs, consumers …).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aimw.config.problems import ConfigPathError, join

DECK_MARK = "_format_version"
_AI_PROXY_TOP_LEVEL = frozenset(
    ("llm_format", "max_request_body_size", "model_name_header", "response_streaming", "genai_category")
)
_FILE_LOG_FIELDS = frozenset(("path", "reopen", "custom_fields_by_lua"))
_STRIP_MODEL_LUA = re.compile(  # Kong's guide (pre-function, access phase), all whitespace removed
    r'localbody=kong\.request\.get_body\("application/json",nil,\d+\)'
    r'ifnotbodyorbody==""thenreturnend'
    r"body\.model=nil"
    r'kong\.service\.request\.set_body\(body,"application/json"\)'
)

Plugin = tuple[str, Mapping[str, object]]  # (its path in the deck file, the plugin)


@dataclass(frozen=True, slots=True)
class DeckDocument:
    """What a deck file holds for aimw.

    document: the ai-proxy-advanced config document (parsed data, variables not substituted).
    strip_model: the guides' pre-function plugin is there.
    places: ``(document path prefix, deck path)`` pairs, the whole document's (``""``) last.
    """

    document: dict[str, object]
    strip_model: bool
    places: tuple[tuple[str, str], ...]

    def locate(self, path: str) -> str:
        """Where the document's ``path`` is written in the deck file
        (``targets[0].model`` -> ``plugins[1].config.model`` for an ai-proxy plugin)."""
        for prefix, place in self.places:
            if not prefix:
                return join(place, path) if path else place
            if path == prefix or path.startswith(prefix + "."):
                return join(place, path[len(prefix) + 1 :]) if path != prefix else place
        return path


def read_deck(deck: Mapping[str, object]) -> DeckDocument:
    """The DeckDocument of a parsed deck file.

    Raises:
        ConfigPathError: at the deck path of a plugin aimw does not run (or of the plugins
            list when there is not exactly one ai-proxy or ai-proxy-advanced).
    """
    proxies: list[tuple[str, str, Mapping[str, object]]] = []
    logs: list[tuple[str, Mapping[str, object]]] = []
    strip_model = False
    for where, plugin in _plugins(deck):
        name, config = plugin.get("name"), plugin.get("config") or {}
        if plugin.get("enabled", True) is False:
            continue
        if not isinstance(config, dict):
            raise ConfigPathError(f"{where}.config", "expected a mapping")
        if name in ("ai-proxy", "ai-proxy-advanced"):
            proxies.append((where, str(name), config))
        elif name == "file-log":
            logs.append((where, config))
        elif name == "pre-function":
            _check_strip_model(where, config)
            strip_model = True
        else:
            raise ConfigPathError(
                f"{where}.name",
                f"the plugin {name!r} is not supported by aimw (it reads ai-proxy, ai-proxy-advanced, file-log and "
                "the guides' pre-function that removes model)",
            )
    if len(proxies) != 1:
        raise ConfigPathError("plugins", f"expected one ai-proxy or ai-proxy-advanced plugin, found {len(proxies)}")
    if len(logs) > 1:
        raise ConfigPathError(logs[1][0], "expected one file-log plugin")
    where, name, config = proxies[0]
    places = [("", f"{where}.config")]
    if name == "ai-proxy-advanced":
        document = dict(config)
    else:
        document = {key: value for key, value in config.items() if key in _AI_PROXY_TOP_LEVEL}
        document["targets"] = [{key: value for key, value in config.items() if key not in _AI_PROXY_TOP_LEVEL}]
        places.insert(0, ("targets[0]", f"{where}.config"))
    if logs:
        log_where, log_config = logs[0]
        if "log" in document:
            raise ConfigPathError(log_where, "the log is given twice: by this plugin and by the config's log")
        document["log"] = {"path": _log_path(log_where, log_config)}
        places.insert(0, ("log", f"{log_where}.config"))
    return DeckDocument(document, strip_model, tuple(places))


def _plugins(deck: Mapping[str, object]) -> list[Plugin]:
    """Every plugin of the file with its deck path: top-level, then per service (and its
    routes), then per top-level route."""
    owners: list[tuple[str, Mapping[str, object]]] = [("", deck)]
    for index, service in enumerate(_entities(deck, "", "services")):
        owners.append((f"services[{index}].", service))
        owners += [
            (f"services[{index}].routes[{number}].", route)
            for number, route in enumerate(_entities(service, f"services[{index}].", "routes"))
        ]
    owners += [(f"routes[{index}].", route) for index, route in enumerate(_entities(deck, "", "routes"))]
    return [
        (f"{where}plugins[{index}]", plugin)
        for where, owner in owners
        for index, plugin in enumerate(_entities(owner, where, "plugins"))
    ]


def _entities(owner: Mapping[str, object], where: str, key: str) -> list[Mapping[str, object]]:
    items = owner.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConfigPathError(f"{where}{key}", "expected a list of mappings")
    return items


def _check_strip_model(where: str, config: Mapping[str, object]) -> None:
    """The pre-function's config holds only the guides' access snippet (deck dumps list the
    other phases empty)."""
    phases = {phase: code for phase, code in config.items() if code not in (None, [], {})}
    code = phases.get("access")
    if (
        set(phases) != {"access"}
        or not isinstance(code, list)
        or len(code) != 1
        or not isinstance(code[0], str)
        or not _STRIP_MODEL_LUA.fullmatch(re.sub(r"\s+", "", code[0]))
    ):
        raise ConfigPathError(
            f"{where}.config",
            "aimw runs no Lua: expected only the access snippet of Kong's guides that removes model from the body",
        )


def _log_path(where: str, config: Mapping[str, object]) -> object:
    """file-log's ``config.path`` (typed later, as ``log.path``)."""
    for key, value in config.items():
        if key not in _FILE_LOG_FIELDS:
            raise ConfigPathError(f"{where}.config.{key}", "not supported by aimw's log (expected path, reopen)")
        if key == "custom_fields_by_lua" and value:
            raise ConfigPathError(f"{where}.config.{key}", "aimw runs no Lua")
    if "path" not in config:
        raise ConfigPathError(f"{where}.config.path", "required")
    return config["path"]
