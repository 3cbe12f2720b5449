import sys

from hub.app.cli import main

sys.exit(main())
