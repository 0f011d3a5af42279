"""Test settings: the real settings plus the test-only tenancy probe app and its routes.

Names are copied explicitly instead of star-imported (DESIGN.md: no settings from star-imports).
"""

import tempfile

from carely import settings as base

for _name in dir(base):
    if _name.isupper():
        globals()[_name] = getattr(base, _name)

INSTALLED_APPS = [*base.INSTALLED_APPS, "tests.tenancy_probe", "tests.privacy_probe"]
ROOT_URLCONF = "tests.urls"

if not base.REDIS_URL:
    # Same file cache backend as the embedded default, but a folder of this run's own: every test
    # clears the cache, and concurrent runs (other checkouts, xdist workers) sharing var/cache
    # would reset each other's rate-limit and lockout counters mid-test.
    CACHES = {
        "default": {
            **base.CACHES["default"],
            "LOCATION": tempfile.mkdtemp(prefix="carely-test-cache-"),
        }
    }
