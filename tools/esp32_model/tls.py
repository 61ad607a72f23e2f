# ssl for the ESP32 model: the unix port's own ssl (real mbedTLS, real
# handshakes), plus the one check the esp32 build adds. Its mbedTLS validates
# certificate dates against the RTC (ports/esp32/boards/sdkconfig.base:
# CONFIG_MBEDTLS_HAVE_TIME_DATE=y), and the RTC reads 2000-01-01 after
# power-on, so until the clock is set every certificate is "not yet valid".
# The unix build checks dates too, but against the host's clock; so the model
# refuses a checked handshake while the RTC is before 2024, with the error
# MicroPython's mbedTLS binding raises for MBEDTLS_X509_BADCERT_FUTURE
# (extmod/modtls_mbedtls.c turns the verify flags into a ValueError). The chip
# raises it from the handshake inside asyncio's open_connection(), as here.
import ssl as _host

from tools.esp32_model import mtime

CERT_NONE = _host.CERT_NONE
CERT_OPTIONAL = _host.CERT_OPTIONAL
CERT_REQUIRED = _host.CERT_REQUIRED
PROTOCOL_TLS_CLIENT = _host.PROTOCOL_TLS_CLIENT
PROTOCOL_TLS_SERVER = _host.PROTOCOL_TLS_SERVER
MBEDTLS_VERSION = getattr(_host, "MBEDTLS_VERSION", "")
OLDEST_VALID_YEAR = 2024  # no certificate in use was valid before this


class SSLContext:
    def __init__(self, protocol):
        self._ctx = _host.SSLContext(protocol)

    @property
    def verify_mode(self):
        return self._ctx.verify_mode

    @verify_mode.setter
    def verify_mode(self, mode):
        self._ctx.verify_mode = mode

    def load_verify_locations(self, cafile=None, cadata=None):
        return self._ctx.load_verify_locations(cafile=cafile, cadata=cadata)

    def load_cert_chain(self, certfile, keyfile):
        return self._ctx.load_cert_chain(certfile, keyfile)

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        if self._ctx.verify_mode == CERT_REQUIRED and mtime.gmtime()[0] < OLDEST_VALID_YEAR:
            raise ValueError("\nThe certificate validity starts in the future\n")
        return self._ctx.wrap_socket(sock, server_side=server_side,
                                     do_handshake_on_connect=do_handshake_on_connect,
                                     server_hostname=server_hostname)
