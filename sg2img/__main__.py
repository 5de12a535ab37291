"""``python -m sg2img ...`` (also what torchrun launches): the same as the ``sg2img`` command."""

import sys

from .cli import main

sys.exit(main())
