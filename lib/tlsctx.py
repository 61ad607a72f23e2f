# TLS client contexts with certificate checks on unless the caller opts out
# (named tlsctx because MicroPython has a built-in module called tls).
# MicroPython ships no CA bundle and its SSLContext defaults to CERT_NONE, so
# both are explicit here; its mbedTLS also takes CA certificates as DER only,
# so PEM (one certificate or a bundle) is converted, each certificate added.
# Also runs on CPython, where the HTTP client's host tests use it.
import sys

try:
    import binascii
except ImportError:  # pragma: no cover
    import ubinascii as binascii

_MICROPY = sys.implementation.name == "micropython"


class TLSError(ValueError):
    """The context cannot be built; str() says why in words."""


def der_certificates(cadata):
    """CA certificates as a list of DER byte strings, from DER bytes or PEM text/bytes."""
    if isinstance(cadata, str):
        cadata = cadata.encode()
    cadata = bytes(cadata)
    if not cadata.lstrip().startswith(b"-----"):
        return [cadata]
    out = []
    body = None
    for line in cadata.split(b"\n"):
        line = line.strip()
        if line.startswith(b"-----BEGIN"):
            body = []
        elif line.startswith(b"-----END"):
            if body is not None:
                out.append(binascii.a2b_base64(b"".join(body)))
            body = None
        elif body is not None and line:
            body.append(line)
    if not out:
        raise TLSError("CA file holds no PEM certificate")
    return out


def client_context(verify=True, cadata=None):
    """An ssl context for a TLS client. cadata: the CA certificate(s), DER or
    PEM. verify=False turns checks off (the caller should say so in its log)."""
    import ssl

    if not _MICROPY:
        ctx = ssl.create_default_context()  # the system's CAs, plus cadata
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not verify:
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if not cadata:
            raise TLSError("certificate checks need a CA certificate (the device has no CA bundle) or verify off")
        ctx.verify_mode = ssl.CERT_REQUIRED
    if cadata:
        try:
            for der in der_certificates(cadata):
                ctx.load_verify_locations(cadata=der)
        except (ValueError, OSError) as e:  # mbedTLS: ValueError "invalid cert"
            raise TLSError("bad CA certificate: %s" % e)
    return ctx
