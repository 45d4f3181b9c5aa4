"""Stand-in for get-pip.py, which ansible-test downloads from a host CI cannot reach.

ansible-test runs it inside a new venv with pip's install arguments (``pip==<version>``
and flags), but with a minimal environment. The pip that ``ensurepip`` bundles trusts only
its own CA list, so it needs the CA bundle, index and proxy settings of the environment
ansible-test was started from: lib.sh saves them next to this file as get_pip_env.json.
"""

import ensurepip
import json
import os
import subprocess
import sys

DROPPED = {"--no-setuptools", "--no-wheel"}  # get-pip.py's own flags, unknown to pip install

env = dict(os.environ)
saved = os.path.join(os.path.dirname(os.path.abspath(__file__)), "get_pip_env.json")
if os.path.exists(saved):
    with open(saved) as handle:
        env.update(json.load(handle))

ensurepip.bootstrap(upgrade=True)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade"]
                      + [arg for arg in sys.argv[1:] if arg not in DROPPED], env=env)
