# Device configuration: the settings in config.json, and get(). This is the
# part that stays in the heap for the whole session; the rest is loaded for
# one call and dropped after it (firmware/resident.py call()):
#   firmware/config_schema.py  defaults, checks, redaction
#   firmware/config_file.py    load (migrations, corrupt files), atomic save
from firmware import resident

PATH = "config.json"
MAX_NETWORKS = 5  # saved Wi-Fi networks, as the reference keeps


class ConfigError(ValueError):
    # Defined here, not beside the checks: callers keep catching this one
    # class while the module that raises it is dropped and loaded again.
    pass


class Config:
    def __init__(self, path=PATH, data=None):
        self.path = path
        self.data = resident.call("firmware.config_schema", "fresh")
        if data:
            self.data.update(data)

    def get(self, key):
        return self.data[key]

    def set(self, key, value):
        self.update({key: value})

    def update(self, values):
        """Validate every value first, so a bad one leaves the config unchanged."""
        resident.call("firmware.config_schema", "check_all", values)
        self.data.update(values)

    def save(self):
        """Write atomically (firmware/config_file.py); raises ConfigError."""
        resident.call("firmware.config_file", "save", self.path, self.data)


def load(path=PATH):
    """Load the config; never raises. Corrupt files are kept as <path>.bad."""
    return resident.call("firmware.config_file", "load", path)
