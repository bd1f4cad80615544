"""The servers measured side by side, and how to start each one.

- direct: the fake upstream itself, in the server-under-test slot: the machine's floor
  (and the ceiling of the fake upstream and the load generator).
- passthrough: Hypercorn + :mod:`bench.passthrough` forwarding to the fake: the floor of a Python hop.
- aimw: Hypercorn + ``recipes.huggingface:app`` (the working tree) with ``AIMW_UPSTREAM_URL`` at the fake.
- aimw-gemini: Hypercorn + ``recipes.gemini:app``: the same, translated to the Gemini API
  (``:streamGenerateContent?alt=sse``, ``x-goog-api-key``).
- aimw-vertex: Hypercorn + ``recipes.vertex:app``: Gemini on Vertex AI with a throwaway
  service-account key whose ``token_uri`` is the fake's token endpoint (google-auth's
  JWT-bearer grant; the runner counts the grants per measurement: one per worker when the
  token is cached).
- aimw-config: Hypercorn + ``recipes.config:app`` serving a config file in Kong's
  ai-proxy-advanced schema (:func:`gateway_config`, written under raw/ per measurement): two
  huggingface targets, round-robin, equal weights, both at the one fake upstream, so that
  against aimw it measures what the balancer and failover layer costs a request.
- aimw-metrics: the aimw target with Prometheus metrics on (AIMW_METRICS=1, and
  PROMETHEUS_MULTIPROC_DIR: a fresh directory per measurement, so that two workers sum their
  counts as in production): against aimw it measures what counting costs (issue 13: under 5 %).
- aimw-limits: the aimw target with a team gateway's checks: AIMW_CONSUMERS (the load
  generator's key is a consumer's, so ClientAuth admits it) and AIMW_RATE_LIMITING (a token
  window per consumer counted in the worker, its limit too high to refuse anything): against
  aimw it measures what the key check and the limit check cost a request.
- aimw-limits-redis: the same, counting in a redis-server started with the gateway (its own
  free port, in the gateway's process group and CPUs): a Redis round trip before and after
  each request.
- aimw-otel: the aimw target with OpenTelemetry on (aimw[otel]): GenAI spans and metrics
  exported by OTLP/HTTP to a loopback receiver that accepts and discards (bench/otlp_sink.py,
  started with the gateway, in its process group and CPUs): against aimw it measures what
  tracing costs.
- litellm: LiteLLM's proxy (its own virtualenv) with the fake as an ``openai/`` model,
  answering Anthropic's ``/v1/messages``.
- aimw@<commit> (``--baseline REF``, not in TARGETS): aimw as it was at a git revision,
  from :func:`baseline_target`.

direct and passthrough speak OpenAI Chat Completions to the load generator; aimw, its
baseline, aimw-gemini, aimw-vertex, aimw-config and litellm speak Anthropic Messages.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench import gemini
from bench.answer import MODEL
from bench.baseline import Baseline, baseline_env
from bench.net import free_port
from bench.servers import ServerSpec

REPO = Path(__file__).resolve().parent.parent
HF_TOKEN = "hf_bench"  # what aimw's targets send the fake as Hugging Face's token (the fake ignores it)
CONFIG_TOKEN_VARIABLE = "HF_BENCH_TOKEN"  # aimw-config's file names it: ${HF_BENCH_TOKEN}
CONFIG_TARGETS = 2
LITELLM_BIN = REPO / "bench" / ".venv-litellm" / "bin" / "litellm"

# LiteLLM offline: the bundled model-cost map instead of fetching it, no telemetry, quiet
# logs, and /v1/messages for openai/ models through Chat Completions (not the Responses API).
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
    "NO_DOCS": "True",
}


@dataclass(frozen=True)
class RunContext:
    """What every target's command needs to know about the run."""

    python: str  # the interpreter that runs Hypercorn and the fake upstream
    raw_dir: Path  # logs and configs of this run
    upstream_url: str  # the shared fake upstream (for the proxies)
    chunks: int
    hypercorn_args: tuple[str, ...] = ()
    litellm_bin: Path = LITELLM_BIN
    loop: str = "auto"  # the direct target's (the fake upstream's) event loop


@dataclass(frozen=True)
class Target:
    """One server kind. ``build(context, port, workers, label)`` returns its ServerSpec
    (not yet pinned); ``multiworker`` targets are also measured with 2 workers;
    ``fetches_tokens``: the runner reports how many tokens it took from the fake's token endpoint."""

    name: str
    api: str
    summary: str
    multiworker: bool
    proxies_upstream: bool
    build: Callable[[RunContext, int, int, str], ServerSpec]
    fetches_tokens: bool = False

    def available(self, context: RunContext) -> str | None:
        """Why this target cannot run here (None: it can)."""
        if self.name == "aimw-limits-redis" and not (shutil.which("redis-server") and shutil.which("redis-cli")):
            return "redis-server (and redis-cli) not installed: apt-get install redis-server"
        if self.name == "aimw-otel" and not all(map(importlib.util.find_spec, ("opentelemetry", "opentelemetry.sdk"))):
            return "opentelemetry-sdk not installed (aimw[otel]): run bench/setup.sh"
        if self.name == "litellm" and not context.litellm_bin.exists():
            return f"{context.litellm_bin} is missing: run bench/setup.sh"
        if self.fetches_tokens:
            missing = [module for module in ("requests", "cryptography") if importlib.util.find_spec(module) is None]
            if missing:
                names = " and ".join(missing)
                return f"{names} not installed (google-auth[requests], the key's RSA): run bench/setup.sh"
        return None


def _hypercorn(context: RunContext, app: str, port: int, workers: int) -> list[str]:
    return [
        context.python, "-m", "hypercorn", app,
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--backlog", "2048",
        *context.hypercorn_args,
    ]  # fmt: skip


def _direct(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    argv = [
        context.python,
        "-m",
        "bench.fake_upstream",
        "--port",
        str(port),
        "--chunks",
        str(context.chunks),
        "--loop",
        context.loop,
    ]
    return ServerSpec("direct", argv, port, context.raw_dir / f"{label}.log", cwd=REPO)


def _passthrough(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    return ServerSpec(
        "passthrough",
        _hypercorn(context, "bench.passthrough:app", port, workers),
        port,
        context.raw_dir / f"{label}.log",
        env={"BENCH_UPSTREAM_URL": context.upstream_url},
        cwd=REPO,
    )


def _recipe(
    name: str, recipe: str, env: dict[str, str], context: RunContext, port: int, workers: int, label: str
) -> ServerSpec:
    return ServerSpec(
        name,
        _hypercorn(context, f"recipes.{recipe}:app", port, workers),
        port,
        context.raw_dir / f"{label}.log",
        env={
            "AIMW_UPSTREAM_URL": context.upstream_url,
            **env,
            "AIMW_LOG_PATH": str(context.raw_dir / f"{label}.aimw.log"),
        },
        cwd=REPO,
    )


def _aimw(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    return _recipe("aimw", "huggingface", {"HUGGINGFACE_API_TOKEN": HF_TOKEN}, context, port, workers, label)


def _aimw_gemini(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    return _recipe("aimw-gemini", "gemini", {"GEMINI_API_KEY": gemini.API_KEY}, context, port, workers, label)


def service_account_file(context: RunContext) -> Path:
    """The run's throwaway service-account key (generated on first use, under raw/, mode 0600),
    its ``token_uri`` the fake upstream's token endpoint."""
    path = context.raw_dir / "vertex-service-account.json"
    token_uri = context.upstream_url + gemini.TOKEN_PATH
    if not path.exists() or json.loads(path.read_text())["token_uri"] != token_uri:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as key_file:
            json.dump(gemini.service_account_key(token_uri), key_file, indent=1)
    return path


def _aimw_vertex(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    env = {
        "GEMINI_API_KEY": str(service_account_file(context)),  # a path: the key stays out of the report's commands
        "GCP_PROJECT_ID": gemini.PROJECT,
        "GEMINI_LOCATION_ID": gemini.LOCATION,
        "GEMINI_API_ENDPOINT": f"{gemini.LOCATION}-aiplatform.googleapis.com",  # replaced by AIMW_UPSTREAM_URL
        "NO_PROXY": "127.0.0.1,localhost",  # google-auth's requests transport would honour an HTTP(S)_PROXY
    }
    return _recipe("aimw-vertex", "vertex", env, context, port, workers, label)


def gateway_config(upstream_url: str, log_path: Path) -> str:
    """The config recipe's file (Kong's ai-proxy-advanced ``config``, YAML): CONFIG_TARGETS
    huggingface targets with the bench's model, each with the whole URL of the fake's Chat
    Completions and ``Authorization: Bearer ${HF_BENCH_TOKEN}``, balanced round-robin with
    equal weights; the JSON-lines log at ``log_path``. Strings are written as JSON, which YAML
    reads as they are."""
    url = json.dumps(upstream_url + "/v1/chat/completions")
    target = (
        "  - weight: 100\n"
        "    auth:\n"
        "      header_name: Authorization\n"
        f'      header_value: "Bearer ${{{CONFIG_TOKEN_VARIABLE}}}"\n'
        "    model:\n"
        "      provider: huggingface\n"
        f"      name: {json.dumps(MODEL)}\n"
        "      options:\n"
        f"        upstream_url: {url}\n"
    )
    head = "llm_format: anthropic\nbalancer:\n  algorithm: round-robin\ntargets:\n"
    return head + target * CONFIG_TARGETS + f"log:\n  path: {json.dumps(str(log_path))}\n"


def _aimw_config(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    config = context.raw_dir / f"{label}.gateway.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(gateway_config(context.upstream_url, context.raw_dir / f"{label}.aimw.log"))
    return ServerSpec(
        "aimw-config",
        _hypercorn(context, "recipes.config:app", port, workers),
        port,
        context.raw_dir / f"{label}.log",
        env={"AIMW_CONFIG": str(config), CONFIG_TOKEN_VARIABLE: HF_TOKEN},
        cwd=REPO,
    )


def _aimw_metrics(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    env = {
        "HUGGINGFACE_API_TOKEN": HF_TOKEN,
        "AIMW_METRICS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(context.raw_dir / f"{label}.metrics"),
    }
    return _recipe("aimw-metrics", "huggingface", env, context, port, workers, label)


BENCH_KEY = "bench-key"  # what the load generator sends as x-api-key (bench/loadgen.py)
LIMITS_NEVER_REACHED = 10**15  # tokens a minute: the check runs, and never refuses


def limits_files(directory: Path, label: str, strategy: str) -> dict[str, str]:
    """aimw-limits' environment: the consumers file (one consumer holding BENCH_KEY) and the
    rate-limiting file (one sliding minute per consumer, ``strategy``), written under
    ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    consumers = directory / f"{label}.consumers.yaml"
    consumers.write_text(f"consumers:\n  - username: bench\n    keyauth_credentials: [{{key: {BENCH_KEY}}}]\n")
    limits = directory / f"{label}.limits.yaml"
    limits.write_text(
        "rate_limiting:\n"
        f"  strategy: {strategy}\n"
        "  llm_providers:\n"
        f"    - {{name: huggingface, limit: [{LIMITS_NEVER_REACHED}], window_size: [60]}}\n"
    )
    return {"AIMW_CONSUMERS": str(consumers), "AIMW_RATE_LIMITING": str(limits)}


def _aimw_limits(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    env = {"HUGGINGFACE_API_TOKEN": HF_TOKEN, **limits_files(context.raw_dir, label, "local")}
    return _recipe("aimw-limits", "huggingface", env, context, port, workers, label)


def _aimw_limits_redis(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    """aimw-limits counting in Redis: ``sh -c`` starts redis-server (no persistence) on a free
    port, waits until it answers, then becomes Hypercorn; stopping the server's process
    group stops both."""
    redis_port = free_port()
    env = {
        "HUGGINGFACE_API_TOKEN": HF_TOKEN,
        "AIMW_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        **limits_files(context.raw_dir, label, "redis"),
    }
    spec = _recipe("aimw-limits-redis", "huggingface", env, context, port, workers, label)
    redis = (
        f"redis-server --port {redis_port} --bind 127.0.0.1 --save '' --appendonly no "
        f"--dir {shlex.quote(str(context.raw_dir))} >{shlex.quote(str(context.raw_dir / f'{label}.redis.log'))} 2>&1 &"
        f" for _ in $(seq 100); do redis-cli -p {redis_port} ping >/dev/null 2>&1 && break; sleep 0.05; done;"
    )
    return replace(spec, argv=["sh", "-c", f"{redis} exec {shlex.join(spec.argv)}"])


def _aimw_otel(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    """aimw with OTEL_EXPORTER_OTLP_ENDPOINT at bench.otlp_sink, which ``sh -c`` starts on a
    free port before it becomes Hypercorn (the SDK's exporter retries until it answers)."""
    sink_port = free_port()
    env = {
        "HUGGINGFACE_API_TOKEN": HF_TOKEN,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_SERVICE_NAME": "aimw-bench",
    }
    spec = _recipe("aimw-otel", "huggingface", env, context, port, workers, label)
    sink_log = shlex.quote(str(context.raw_dir / f"{label}.otlp-sink.log"))
    sink = f"{shlex.quote(context.python)} -m bench.otlp_sink --port {sink_port} >{sink_log} 2>&1 &"
    return replace(spec, argv=["sh", "-c", f"{sink} exec {shlex.join(spec.argv)}"])


def baseline_target(baseline: Baseline, source: Path) -> Target:
    """aimw at ``baseline``'s revision: as the aimw target, but from ``source`` (its extracted
    src/ and recipes/, see :mod:`bench.baseline`) instead of the working tree."""

    def build(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
        spec = _aimw(context, port, workers, label)
        return replace(spec, name=baseline.name, env={**spec.env, **baseline_env(source)}, cwd=source)

    return Target(baseline.name, "anthropic", baseline.summary, True, True, build)


def litellm_config(upstream_url: str) -> str:
    """LiteLLM's proxy config: one ``openai/`` model served by the fake upstream."""
    return (
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream_url}/v1\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  use_chat_completions_url_for_anthropic_messages: true\n"
    )


def _litellm(context: RunContext, port: int, workers: int, label: str) -> ServerSpec:
    config = context.raw_dir / "litellm.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(litellm_config(context.upstream_url))
    argv = [
        str(context.litellm_bin), "--config", str(config),
        "--host", "127.0.0.1", "--port", str(port),
        "--num_workers", str(workers),
    ]  # fmt: skip
    return ServerSpec(
        "litellm", argv, port, context.raw_dir / f"{label}.log", env=dict(LITELLM_ENV), cwd=context.raw_dir
    )


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("direct", "openai", "the fake upstream itself (machine floor)", False, False, _direct),
        Target("passthrough", "openai", "Hypercorn + httpx pass-through, no translation", True, True, _passthrough),
        Target("aimw", "anthropic", "Hypercorn + recipes.huggingface:app", True, True, _aimw),
        Target("aimw-gemini", "anthropic", "Hypercorn + recipes.gemini:app (Gemini API key)", True, True, _aimw_gemini),
        Target(
            "aimw-vertex",
            "anthropic",
            "Hypercorn + recipes.vertex:app (Vertex AI, service-account token)",
            True,
            True,
            _aimw_vertex,
            fetches_tokens=True,
        ),
        Target(
            "aimw-config",
            "anthropic",
            "Hypercorn + recipes.config:app (a config file: two huggingface targets round-robin, "
            "both at the one fake upstream: the balancer and failover layer's cost)",
            True,
            True,
            _aimw_config,
        ),
        Target(
            "aimw-metrics",
            "anthropic",
            "Hypercorn + recipes.huggingface:app with Prometheus metrics on (the counting's cost)",
            True,
            True,
            _aimw_metrics,
        ),
        Target(
            "aimw-limits",
            "anthropic",
            "Hypercorn + recipes.huggingface:app with consumers' keys and a local token limit "
            "(the key and limit checks' cost)",
            True,
            True,
            _aimw_limits,
        ),
        Target(
            "aimw-limits-redis",
            "anthropic",
            "aimw-limits counting in a local redis-server (a Redis round trip before and after each request)",
            True,
            True,
            _aimw_limits_redis,
        ),
        Target(
            "aimw-otel",
            "anthropic",
            "Hypercorn + recipes.huggingface:app with OpenTelemetry on, exporting OTLP/HTTP to a loopback "
            "sink (what tracing costs)",
            True,
            True,
            _aimw_otel,
        ),
        Target("litellm", "anthropic", "LiteLLM proxy /v1/messages (uvicorn)", False, True, _litellm),
    )
}
