import sys

from hwnas.cli.main import main

sys.exit(main())
