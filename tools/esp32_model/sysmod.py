# sys as the esp32 port reports it: platform "esp32" (the firmware picks its
# board profile and its crash handling by it); every other name is the unix
# port's own object (sys.modules and sys.path stay the very same dict/list).
import sys as _host

for _name in dir(_host):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_host, _name)
platform = "esp32"
