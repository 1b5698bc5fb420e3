"""The project tests import their shared helpers by name (``from tiny_configs import ...``)."""

import sys
from pathlib import Path

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
