"""The README's worked example of a config file loads and builds as the README says."""

from __future__ import annotations

import re

from aimw.config import build_targets, load_config
from aimw.gateway import config_gateway
from aimw.settings import Settings
from tests.shared_data import REPO


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Many targets") :]
    (block,) = re.findall(r"```yaml\n(.*?)```", section[: section.index("\n## ", 5)], re.S)
    return block


def test_the_readme_example_loads_and_builds(write_config, service_account_json, tmp_path):
    environ = {
        "GEMINI_API_KEY": service_account_json,
        "AZURE_OPENAI_API_KEY": "azure-key-0123456789abcdef0123456789",
        "HUGGINGFACE_API_TOKEN": "hf_readme_example",
    }
    config = load_config(write_config(readme_example()), environ)

    assert config.balancer.algorithm == "priority"
    assert "non_idempotent" in config.balancer.failover_criteria
    specs = build_targets(config, environ=environ)
    assert [(spec.provider.name, spec.model, spec.weight) for spec in specs] == [
        ("gemini", "gemini-2.5-pro", 100),
        ("azure", "gpt-4.1", 50),
        ("huggingface", "Qwen/Qwen2.5-7B-Instruct", 100),
    ]
    assert specs[0].provider.base_url == "https://us-central1-aiplatform.googleapis.com"
    assert specs[0].cap_fields == {"max_tokens": 8192}
    assert specs[1].provider.base_url == "https://my-resource.openai.azure.com"
    assert specs[2].aliases == ("claude-haiku-*",)
    app = config_gateway(config, Settings.from_env({"AIMW_LOG_PATH": str(tmp_path / "aimw.log")}), targets=specs)
    assert callable(app)
