"""C identifiers for names that come from a model.

Nothing from a model reaches C source but through ``mangle``: it keeps [A-Za-z0-9_], folds
every other run of characters into one '_', prefixes the kind ('layer_', 'w_') or suffixes a
local variable's role ('_out'), and adds a short hash of the original when anything but a
module path's '.' was changed or cut, so that distinct names (``a-b`` and ``a_b``) stay
distinct. Identifiers are unique within one ``Namer`` (a counter settles the rest, e.g.
``a.b`` and ``a_b``).
"""
import hashlib
import re

MAX_LEN = 48
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def sanitize(name):
    safe = _UNSAFE.sub("_", name).strip("_")
    return safe or "unnamed"


def readable(name):
    """A model's name as comments show it: sanitized, and cut to MAX_LEN characters."""
    safe = sanitize(name)
    return safe if len(safe) <= MAX_LEN else safe[:MAX_LEN - 3] + "..."


class Namer:
    def __init__(self):
        self.used = set()

    def mangle(self, name, prefix, suffix=""):
        safe = sanitize(name)
        changed = safe != name.replace(".", "_")  # module paths map to '_' without a hash
        if len(safe) > MAX_LEN:
            safe, changed = safe[:MAX_LEN].rstrip("_"), True
        if changed:
            safe += "_" + hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:6]
        ident = f"{prefix}{safe}{suffix}"
        candidate, i = ident, 1
        while candidate in self.used:
            candidate, i = f"{ident}_{i}", i + 1
        self.used.add(candidate)
        return candidate

    def local(self, name, role):
        """A local variable named after a layer and its role, e.g. 'conv1_out': the role suffix
        keeps it apart from C keywords and from the names the generated code declares itself;
        a name that starts with a digit (a Sequential's '0') takes 'layer_' first."""
        return self.mangle(name, "layer_" if sanitize(name)[0].isdigit() else "", "_" + role)


def model_prefix(name):
    """The prefix of the exported C functions: lower-case, safe, e.g. 'simplecnn'."""
    safe = sanitize(name).lower()[:MAX_LEN]
    if safe[0].isdigit():
        safe = "m_" + safe
    return safe
