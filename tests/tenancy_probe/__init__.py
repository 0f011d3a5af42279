"""Test-only app: a minimal organisation-owned resource that exercises the API's tenancy base."""
