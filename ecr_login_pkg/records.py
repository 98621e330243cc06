"""``@record``: a dataclass to mypy, a few plain methods at run time.

The standard ``dataclasses`` module imports ``inspect`` (and with it ``ast``, ``dis``,
``tokenize``...), which costs more than everything else a run with nothing due does.
The classes of this package need only the plain part of a dataclass: an ``__init__``
taking the annotated fields in order (defaults as written), ``__repr__``, ``__eq__``,
and with ``frozen=True`` immutability and a ``__hash__``. That is what ``record`` adds.
Type checkers see ``dataclasses.dataclass`` itself, so constructor calls, ``replace``
and frozen fields are checked exactly as for a dataclass.

Limits (none used here): no ``field()``, no inheritance between records, no
``ClassVar`` annotations; a default is shared, so make it immutable.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import asdict, replace
    from dataclasses import dataclass as record
else:

    def record(cls=None, /, *, frozen=False):
        """Decorate a class whose annotated attributes are its fields (``@record`` or ``@record(frozen=True)``)."""

        def make(cls):
            names = tuple(vars(cls).get("__annotations__", {}))
            defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
            cls.__record_fields__ = names
            methods = {"__init__": _init(cls.__name__, names, defaults), "__repr__": _repr, "__eq__": _eq}
            if frozen:
                methods.update(__setattr__=_refuse, __delattr__=_refuse, __hash__=_hash)
            else:
                methods["__hash__"] = None  # mutable and compared by value: unhashable, as a dataclass
            for name, method in methods.items():
                if name not in cls.__dict__:  # a method the class defines itself wins
                    setattr(cls, name, method)
            return cls

        return make if cls is None else make(cls)

    def _init(class_name, names, defaults):
        known = frozenset(names)

        count = len(names)

        def __init__(self, *args, **kwargs):
            if not args:  # the usual call, all by keyword: one merge and two checks
                values = {**defaults, **kwargs}
                if len(values) == count and kwargs.keys() <= known:
                    self.__dict__.update(values)
                    return
            if len(args) > len(names):
                raise TypeError(f"{class_name}() takes {len(names)} arguments but {len(args)} were given")
            unknown = kwargs.keys() - known
            if unknown:
                raise TypeError(f"{class_name}() got an unexpected keyword argument '{min(unknown)}'")
            twice = [name for name in names[:len(args)] if name in kwargs]
            if twice:
                raise TypeError(f"{class_name}() got multiple values for argument '{twice[0]}'")
            values = {**defaults, **dict(zip(names, args)), **kwargs}
            if len(values) < len(names):
                missing = next(name for name in names if name not in values)
                raise TypeError(f"{class_name}() missing required argument: '{missing}'")
            self.__dict__.update(values)  # one update, and past the __setattr__ a frozen record refuses

        return __init__

    def _values(obj):
        return tuple(getattr(obj, name) for name in obj.__record_fields__)

    def _repr(self):
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_fields__)
        return f"{type(self).__qualname__}({shown})"

    def _eq(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def _hash(self):
        return hash(_values(self))

    def _refuse(self, name, *value):
        raise AttributeError(f"cannot assign to field '{name}' of a frozen {type(self).__name__}")

    def replace(obj, /, **changes):
        """A copy of ``obj`` with some fields changed (``dataclasses.replace``)."""
        return type(obj)(**{**asdict(obj), **changes})

    def asdict(obj):
        """The fields as a dict: shallow, unlike ``dataclasses.asdict`` (the fields here are plain values)."""
        return {name: getattr(obj, name) for name in obj.__record_fields__}


def field_names(cls: type) -> tuple[str, ...]:
    """The names of a record's fields, in order."""
    return tuple(vars(cls).get("__annotations__", {}))
