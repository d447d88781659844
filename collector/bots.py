"""Bot detection by User-Agent alone, as the contract fixes (known crawlers and HeadlessChrome).

The snippet records everywhere, automated browsers included; deciding what is a bot is the
collector's business so that the rule can change without a new snippet.
"""

from __future__ import annotations

import re

BOT_USER_AGENT = re.compile(
    # Only clients that run JavaScript can send beacons: crawlers that render pages, headless
    # browsers and monitors; HTTP libraries are listed for scripted replays.
    r"bot\b|bot/|crawl|spider|slurp|headless|phantomjs|facebookexternalhit|bingpreview|"
    r"lighthouse|pingdom|uptimerobot|prerender|"
    r"curl/|wget/|python-requests|python-urllib|python-httpx|go-http-client|java/|okhttp|"
    r"axios/|node-fetch|libwww|scrapy",
    re.IGNORECASE,
)


def is_bot(user_agent: str) -> bool:
    """True for crawlers, link previewers, HTTP libraries, headless browsers and a missing UA."""
    return not user_agent.strip() or BOT_USER_AGENT.search(user_agent) is not None
