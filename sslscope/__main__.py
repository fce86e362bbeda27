import sys

from sslscope.cli import main

sys.exit(main())
