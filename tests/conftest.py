import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import budget  # noqa: F401  (registers and loads the hypothesis profiles)

pytest_plugins = ["pytester"]  # the voice_call plugin is tested in a pytester run
