"""``python -m haloagent`` and the zipapp ``haloagent.pyz`` start here."""
import sys

from haloagent.cli import main

sys.exit(main())
