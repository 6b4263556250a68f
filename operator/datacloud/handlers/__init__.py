"""kopf handlers: parse, call a reconciler, map errors.

Importing this package imports every module in it, which registers their handlers with kopf; a new kind's
handlers only need a module here.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
