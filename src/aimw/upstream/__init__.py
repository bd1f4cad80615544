"""The upstream call: transport lifecycle and proxies (transport), client-departure watch
(departure), typed failures and their mapping (failures), relaying the answer (relay), and
the terminal app that joins them (app)."""

from aimw.upstream.app import UpstreamApp
from aimw.upstream.failures import (
    UpstreamBrokeOff,
    UpstreamBusy,
    UpstreamFailure,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from aimw.upstream.transport import UpstreamTransport, environment_proxy

__all__ = [
    "UpstreamApp",
    "UpstreamBrokeOff",
    "UpstreamBusy",
    "UpstreamFailure",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "UpstreamTransport",
    "UpstreamUnreachable",
    "environment_proxy",
]
