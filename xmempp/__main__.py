import sys

from xmempp.cli import main

sys.exit(main())
