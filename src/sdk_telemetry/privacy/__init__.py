"""Privacy: what may leave the process. The scrubbing rules and the scrubber (`scrubber`), their
settings (`settings`), sampling of successful invocations (`sampling`) and explicit consent
(`consent`). Nothing here holds the active setup: callers pass the settings they have."""

from sdk_telemetry.privacy.consent import (
    consent_granted,
    count_withheld,
    grant_consent,
    revoke_consent,
    set_required,
    withheld,
)
from sdk_telemetry.privacy.consent import stats as consent_stats
from sdk_telemetry.privacy.sampling import CANCELLED, SamplingSettings, decide
from sdk_telemetry.privacy.sampling import stats as sampling_stats
from sdk_telemetry.privacy.scrubber import STRUCTURAL_ATTRIBUTES, Scrubber, ScrubCallback, ScrubMatch
from sdk_telemetry.privacy.scrubber import stats as scrub_stats
from sdk_telemetry.privacy.settings import PrivacyArguments, PrivacySettings

__all__ = [
    "CANCELLED",
    "STRUCTURAL_ATTRIBUTES",
    "PrivacyArguments",
    "PrivacySettings",
    "SamplingSettings",
    "ScrubCallback",
    "ScrubMatch",
    "Scrubber",
    "consent_granted",
    "consent_stats",
    "count_withheld",
    "decide",
    "grant_consent",
    "revoke_consent",
    "sampling_stats",
    "scrub_stats",
    "set_required",
    "withheld",
]
