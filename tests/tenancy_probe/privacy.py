"""The tenancy probe is test scaffolding; its label is a test string, never a person's data."""

from carely.privacy.registry import registry

registry.not_personal_model(
    "tenancy_probe.ProbeRecord", reason="test-only rows with a made-up label, no person behind them"
)
