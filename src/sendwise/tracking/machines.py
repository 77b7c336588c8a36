"""Machine opens and bot clicks: kept, but flagged, so results count human engagement.

Mail privacy proxies (Apple Mail Privacy Protection) fetch every pixel seconds to minutes after
delivery with a bare ``Mozilla/5.0`` user agent from the proxy's network; security gateways
(link scanners) follow every link of a message at once. The rules, in order of evidence:

1. a user agent of a known proxy or scanner, or the bare ``Mozilla/5.0`` of Apple's proxy;
2. an address in a known proxy network;
3. an event within ``instant_seconds`` of the send (no human is that quick);
4. (clicks, at results time) ``burst_links`` or more different links of one message clicked
   within ``burst_seconds``: see :func:`flag_click_bursts`.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

import pandas as pd

MACHINE_AGENTS = re.compile(
    r"^Mozilla/5\.0$|YahooMailProxy|Barracuda|Mimecast|Proofpoint|Symantec|MessageLabs|"
    r"TrendMicro|Forcepoint|Cisco|IronPort|SafeLinks|HeadlessChrome|PhantomJS|"
    r"\b(?:bot|crawler|spider|scanner|preview)\b|python-requests|Go-http-client|curl/|Wget",
    re.IGNORECASE,
)
# Apple's network (Mail Privacy Protection egress) and documentation ranges used by tests
PROXY_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("17.0.0.0/8",))
INSTANT_SECONDS = 2.0


def is_machine(
    user_agent: str | None,
    client_ip: str | None = None,
    *,
    occurred_at: datetime | None = None,
    sent_at: datetime | None = None,
    instant_seconds: float = INSTANT_SECONDS,
) -> bool:
    """True when an open or a click looks like a machine's (rules 1-3 above)."""
    agent = (user_agent or "").strip()
    if not agent or MACHINE_AGENTS.search(agent):
        return True
    if client_ip:
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            address = None
        if address is not None and any(address in net for net in PROXY_NETWORKS):
            return True
    if occurred_at is not None and sent_at is not None:
        return (occurred_at - sent_at).total_seconds() < instant_seconds
    return False


def flag_click_bursts(
    clicks: pd.DataFrame, *, burst_links: int = 3, burst_seconds: float = 5.0
) -> pd.Series:
    """For clicks (message_id, url, occurred_at): True for those of a message whose clicks
    reached ``burst_links`` different links within ``burst_seconds`` of its first click
    (a scanner following every link). Vectorised; aligned with ``clicks``' index."""
    if clicks.empty:
        return pd.Series(False, index=clicks.index, dtype=bool)
    when = pd.to_datetime(clicks["occurred_at"])
    first = when.groupby(clicks["message_id"]).transform("min")
    early = (when - first).dt.total_seconds() <= burst_seconds
    early_links = (
        clicks.loc[early].groupby("message_id")["url"].nunique().reindex(clicks["message_id"])
    )
    burst = early_links.fillna(0).to_numpy() >= burst_links
    return pd.Series(burst & early.to_numpy(), index=clicks.index, dtype=bool)
