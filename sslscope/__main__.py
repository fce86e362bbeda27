import sys

from sslscope.threads import prepare_openmp

prepare_openmp()  # before torch is imported (sslscope.cli imports it)

from sslscope.cli import main  # noqa: E402

sys.exit(main())
