# Who the device is to a server: the Device-Id (its MAC), the Client-Id
# (a UUID startup creates once and keeps in the config) and the token for
# the Authorization header, minted fresh for every connect when the device
# has its own secret (firmware/auth.py).
from firmware import log

_TAG = "identity"


def format_mac(mac):
    """6 bytes -> 'aa:bb:cc:dd:ee:ff' (the Device-Id header)."""
    return ":".join("%02x" % b for b in mac)


class Identity:
    def __init__(self, cfg, hal):
        self.cfg = cfg
        self.device_id = format_mac(hal.mac())

    @property
    def client_id(self):
        return self.cfg.get("client_id")

    def token(self, server_token):
        """The token for one connect: a signed one when device_secret is set,
        else the one the user or the OTA reply gave (may be empty)."""
        secret = self.cfg.get("device_secret")
        if not secret:
            return server_token
        from firmware import auth

        ts = auth.token_ts()
        if not auth.clock_ok(ts):
            log.warn(_TAG, "clock not set; a signed token will be refused")
        return auth.mint_token(secret, self.client_id, self.device_id, ts)
