"""sms-retarget's collector: ingest, consent, automations and sending, in one Starlette app."""

from __future__ import annotations

__version__ = "0.1.0"
