"""How much the generated tests (``@pytest.mark.generated``) run: one budget per profile.

``HYPOTHESIS_PROFILE`` picks the profile (``ci`` by default, ``long`` for the
long run; see the README's "Generated tests" section)::

    @pytest.mark.generated
    @given(...)
    @budget(ci=200, long=20_000)
    def test_parser_never_raises(...): ...

Both profiles are derandomized (a fixed seed): a failure found in CI fails
the same way on every machine and every rerun. The long profile runs more
examples; its first ``ci`` examples are those CI runs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"HYPOTHESIS_PROFILE must be 'ci' or 'long', not {PROFILE!r}")

_COMMON = dict(
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", **_COMMON)  # type: ignore[arg-type]
settings.register_profile("long", **_COMMON)  # type: ignore[arg-type]
settings.load_profile(PROFILE)


def budget(ci: int, long: int) -> settings:
    """Settings for one generated test: ``ci`` examples in CI, ``long`` in the long profile."""
    return settings(max_examples=long if PROFILE == "long" else ci)
