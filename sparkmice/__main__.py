import sys

from sparkmice.cli import main

sys.exit(main())
