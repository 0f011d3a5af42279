"""Test settings: the real settings plus the test-only tenancy probe app and its routes.

Names are copied explicitly instead of star-imported (DESIGN.md: no settings from star-imports).
"""

from carely import settings as base

for _name in dir(base):
    if _name.isupper():
        globals()[_name] = getattr(base, _name)

INSTALLED_APPS = [*base.INSTALLED_APPS, "tests.tenancy_probe"]
ROOT_URLCONF = "tests.urls"
