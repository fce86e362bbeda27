import sys

from sslscope.entry import main

sys.exit(main())
