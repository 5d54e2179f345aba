"""The web process loads no training stack: torch belongs to the workers that train."""

import subprocess
import sys

CHECK = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns  # imports every view, API view, form, service and selector
import config.wsgi
heavy = sorted(name for name in ("torch", "transformers", "trl", "datasets") if name in sys.modules)
print(",".join(heavy))
"""


def test_web_process_does_not_import_torch_or_transformers():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
