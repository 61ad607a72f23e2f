"""The listener's TLS context, loaded from the config's cert and key files.

Apart from proxy.py so that the CLI can check the files before anything
imports libopus (transcode.py): a host without libopus then gets the one
"cannot load libopus" line, not a traceback from the import.
"""

import ssl

from .config import ConfigError


def server_tls(tls):
    """The listener's ssl context, or None without TLS; a bad file is a ConfigError."""
    if not tls.cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot load TLS certificate {tls.cert} / key {tls.key}: "
                          f"{getattr(e, 'strerror', None) or e}") from None
    return ctx
