"""System checks for deployment facts the code cannot enforce by itself."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register


@register("carely", deploy=False)
def check_eea_regions(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """SEC-7: personal data stays in the EEA; warn when a configured region is outside it."""
    allowed = set(settings.EEA_AWS_REGIONS)
    configured = {
        "S3_REGION": getattr(settings, "S3_REGION", None),
        "SES_REGION": getattr(settings, "SES_REGION", None),
        "BEDROCK_REGION": getattr(settings, "BEDROCK_REGION", None),
    }
    warnings = [
        Warning(
            f"{name}={region!r} is outside the EEA; personal data must not be transferred there.",
            hint=f"Use one of: {', '.join(sorted(allowed))}.",
            id="carely.W001",
        )
        for name, region in configured.items()
        if region and region not in allowed
    ]
    infobip_region = (getattr(settings, "INFOBIP_REGION", "") or "").lower()
    if getattr(settings, "MESSAGING_PROVIDER", "console") == "infobip" and infobip_region not in {
        "eu",
        "eea",
    }:
        warnings.append(
            Warning(
                f"INFOBIP_REGION={infobip_region!r}: the Infobip account must keep data in the EU.",
                hint="Set INFOBIP_REGION=eu once the account's EU data residency is confirmed.",
                id="carely.W002",
            )
        )
    return warnings
