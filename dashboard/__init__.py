"""The marketers' web page. Routes are added by the dashboard capability; collector mounts them."""

from __future__ import annotations
