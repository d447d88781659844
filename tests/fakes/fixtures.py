"""Fixtures for the fakes of external services (filled in by the Vonage work)."""

from __future__ import annotations
