"""Shared by every test folder: this folder is on sys.path, so `import dbt_runner` works.

The privacy keys are set explicitly for the whole session (docs/privacy.md): one HMAC key and
a key store in a temporary folder, inherited by every subprocess (dbt, the collector, the
CLI), so no test creates a key in the repository's data/ folder.
"""

import os
import tempfile

os.environ.setdefault("EWH_PSEUDONYM_KEY", "test-only-pseudonym-key-0123456789abcdef")
os.environ.setdefault("EWH_KEY_STORE", tempfile.mkdtemp(prefix="ewh-keystore-"))
