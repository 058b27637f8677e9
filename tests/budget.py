"""How much the generated tests (``@pytest.mark.generated``) run: one budget per profile.

``HYPOTHESIS_PROFILE`` picks the profile: ``ci`` by default (what CI runs on
3.11), ``dev`` for the fast run (``python3 dev.py test --fast`` sets it: a
tenth of the ``ci`` examples, at least 5), ``long`` for the long run (see
docs/contributing.md, "Tests that attack the promises")::

    @pytest.mark.generated
    @given(...)
    @budget(ci=200, long=20_000)
    def test_parser_never_raises(...): ...

Every profile is derandomized (a fixed seed): a failure found in CI fails
the same way on every machine and every rerun. The long profile runs more
examples; its first ``ci`` examples are those CI runs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILES = ("dev", "ci", "long")
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in PROFILES:
    raise ValueError(f"HYPOTHESIS_PROFILE must be one of {', '.join(PROFILES)}, not {PROFILE!r}")

_COMMON = dict(
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
for _name in PROFILES:
    settings.register_profile(_name, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(PROFILE)


def examples(ci: int, long: int) -> int:
    """How many examples the profile in force runs of a test given ``ci`` and ``long``."""
    return {"dev": max(5, ci // 10), "ci": ci, "long": long}[PROFILE]


def budget(ci: int, long: int) -> settings:
    """Settings for one generated test: ``ci`` examples in CI, ``long`` in the long profile."""
    return settings(max_examples=examples(ci, long))
