"""The device's address when the gateway sits behind a reverse proxy.

Behind nginx every TCP peer is nginx itself, so per-IP limits, the audit and
the logs would see one address for all devices. When (and only when) the
peer is a trusted proxy (config "trusted_proxies", --trusted-proxy), the
address comes from the X-Real-IP header the proxy sets, else from the last
hop of X-Forwarded-For (the address the proxy itself saw). From any other
peer both headers are ignored: a device must not choose its own IP.
A header value that is not one IP address is ignored too, so only a clean
address ever reaches a log line or a limit key.
"""

import ipaddress


def networks(cidrs):
    """ip_network objects of config.check_trusted_proxies' strings."""
    return [ipaddress.ip_network(c) for c in cidrs]


def _address(text):
    """The normalised address in text, or None if it is not exactly one IP address."""
    try:
        a = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return a.ipv4_mapped or a if a.version == 6 else a


def client_ip(peer_ip, headers, trusted):
    """The address to count and log: peer_ip, or the proxy's header when peer_ip is trusted.

    headers: (name, value) pairs in arrival order; trusted: ip_network objects.
    """
    peer = _address(peer_ip)
    if peer is None or not any(peer in net for net in trusted):
        return peer_ip
    real, forwarded = None, []
    for name, value in headers:
        low = name.lower()
        if low == "x-real-ip":
            real = value
        elif low == "x-forwarded-for":
            forwarded += value.split(",")
    for candidate in (real, forwarded[-1] if forwarded else None):
        a = _address(candidate) if candidate else None
        if a is not None:
            return str(a)
    return peer_ip
