import sys

from tools.dev.cli import main

sys.exit(main())
