# Device entry point: start the xiaozhi-mpy application.
import sys

from firmware import app

sys.exit(app.main())
