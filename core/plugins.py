"""The plugin loader: entry points in, declarations out.

We do not use pluggy's ``load_setuptools_entrypoints``: it is all-or-nothing,
so one vendor's broken import would take the whole site down.  Here each
entry point is loaded, checked and registered on its own; a failure is
recorded (name, error) and the others still load, unless strict mode asks for
failures to stop start-up (conda and llm made the same change).

After loading, every ``firebus_register_*`` hook is called per plugin so a
duplicate ``type_key`` is reported naming both plugins (Datasette does the
same for its registrations).
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import os
import traceback
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType
from typing import Any, Callable, Iterable

import pluggy

from firebus.sdk import hookspecs
from firebus.sdk.manifest import API_VERSION, Manifest, sdk_compatible

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "firebus.plugins"
ENV_STRICT = "FIREBUS_STRICT_PLUGINS"
ENV_ALLOW = "FIREBUS_PLUGINS"  # comma-separated allow-list
ENV_BLOCK = "FIREBUS_BLOCK_PLUGINS"  # comma-separated block-list
ENV_NO_AUTOLOAD = "FIREBUS_DISABLE_PLUGIN_AUTOLOAD"

#: register_* hook name → the kind of declaration it returns.
DECLARATION_HOOKS = {
    "firebus_register_transports": "transport",
    "firebus_register_drivers": "driver",
    "firebus_register_rules": "rule",
    "firebus_register_notifiers": "notifier",
    "firebus_register_detectors": "detector",
}


class PluginStatus(StrEnum):
    LOADED = "loaded"
    FAILED = "failed"  # import, manifest or registration error
    INCOMPATIBLE = "incompatible"  # requires another SDK version
    BLOCKED = "blocked"  # excluded by the allow/block lists


class PluginError(Exception):
    """Raised in strict mode, or for conflicts that make start-up unsafe (duplicate keys)."""


@dataclass
class PluginRecord:
    name: str
    status: PluginStatus
    version: str = ""
    distribution: str = ""
    module: str = ""
    hooks: list[str] = field(default_factory=list)
    error: str = ""
    manifest: Manifest | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": str(self.status),
            "version": self.version,
            "distribution": self.distribution,
            "module": self.module,
            "hooks": self.hooks,
            "error": self.error,
            "description": self.manifest.description if self.manifest else "",
            "requires_sdk": self.manifest.requires_sdk if self.manifest else "",
        }


@dataclass
class Declaration:
    kind: str
    key: str
    cls: type
    plugin: str


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


class PluginHost:
    """One pluggy manager per core instance (a module-global one leaks between tests)."""

    def __init__(
        self,
        *,
        allow: Iterable[str] | None = None,
        block: Iterable[str] = (),
        strict: bool | None = None,
        autoload: bool | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager("firebus")
        self.pm.add_hookspecs(hookspecs)
        env_allow = _env_list(ENV_ALLOW)
        self.allow = set(env_allow) if env_allow is not None else (set(allow) if allow is not None else None)
        self.block = set(block) | set(_env_list(ENV_BLOCK) or [])
        self.strict = strict if strict is not None else os.environ.get(ENV_STRICT, "") not in ("", "0", "false")
        self.autoload = autoload if autoload is not None else os.environ.get(ENV_NO_AUTOLOAD, "") in ("", "0")
        self.records: dict[str, PluginRecord] = {}
        self.declarations: dict[str, dict[str, Declaration]] = {kind: {} for kind in DECLARATION_HOOKS.values()}
        #: point classes plugins declare beyond ``firebus.sdk.PointClass`` → the plugin declaring it
        self.point_classes: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        if not self.autoload:
            return
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            self._load_entry_point(ep)

    def _load_entry_point(self, ep: md.EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        record = PluginRecord(
            name=ep.name,
            status=PluginStatus.LOADED,
            version=dist.version if dist else "",
            distribution=dist.metadata["Name"] if dist else "",
            module=ep.value,
        )
        if ep.name in self.records:
            other = self.records[ep.name]
            self._fail(record, f"plugin name {ep.name!r} is also used by {other.distribution or other.module}")
            return
        if ep.name in self.block or (self.allow is not None and ep.name not in self.allow):
            record.status = PluginStatus.BLOCKED
            self.records[ep.name] = record
            return
        try:
            module = ep.load()
        except Exception as exc:
            self._fail(record, f"import failed: {type(exc).__name__}: {exc}", exc)
            return
        self.register(module, name=ep.name, record=record)

    def register(self, plugin: ModuleType | object, *, name: str, record: PluginRecord | None = None) -> PluginRecord:
        """Register a plugin object (entry-point module, or an object in tests)."""
        record = record or PluginRecord(name=name, status=PluginStatus.LOADED, module=getattr(plugin, "__name__", ""))
        manifest = getattr(plugin, "FIREBUS_MANIFEST", None)
        if manifest is not None:
            if not isinstance(manifest, Manifest):
                self._fail(record, "FIREBUS_MANIFEST is not a firebus.sdk.Manifest")
                return record
            record.manifest = manifest
            try:
                compatible = sdk_compatible(manifest.requires_sdk)
            except ValueError as exc:
                self._fail(record, f"manifest: {exc}")
                return record
            if not compatible:
                record.status = PluginStatus.INCOMPATIBLE
                record.error = (
                    f"requires firebus SDK {manifest.requires_sdk}, this core provides {API_VERSION}"
                )
                self.records[name] = record
                log.error("plugin %s refused: %s", name, record.error)
                if self.strict:
                    raise PluginError(f"plugin {name}: {record.error}")
                return record
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validates hook names and signatures here
            self._fail(record, f"registration failed: {type(exc).__name__}: {exc}", exc)
            return record
        record.hooks = sorted(impl.name for impl in self._hookcallers(plugin))
        self.records[name] = record
        return record

    def _hookcallers(self, plugin: object) -> list[Any]:
        return self.pm.get_hookcallers(plugin) or []

    def _fail(self, record: PluginRecord, message: str, exc: BaseException | None = None) -> None:
        record.status = PluginStatus.FAILED
        record.error = message
        self.records[record.name] = record
        log.error("plugin %s not loaded: %s", record.name, message)
        if exc is not None:
            log.debug("".join(traceback.format_exception(exc)))
        if self.strict:
            raise PluginError(f"plugin {record.name}: {message}") from exc

    def unregister(self, name: str, reason: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        record = self.records.get(name)
        if record is not None:
            self._fail(record, reason)

    # -- declarations ----------------------------------------------------------------------

    def collect_declarations(self, core: Any) -> None:
        """Call every ``register_*`` hook once per plugin and index the classes by type key.

        A plugin whose hook raises or returns something malformed is unloaded
        (recorded as failed) and the others go on; a duplicate key is a
        conflict between two working plugins and always stops start-up.
        """
        self.pm.check_pending()
        for hook_name, kind in DECLARATION_HOOKS.items():
            table = self.declarations[kind]
            table.clear()
            for plugin_name, call in self._callers(hook_name):
                try:
                    results = call(core=core)  # pluggy's list: this plugin's one result, if not None
                    classes = (results[0] if results else None) or []
                    found = [self._declaration(kind, cls, plugin_name) for cls in classes]
                except Exception as exc:
                    self.unregister(plugin_name, f"{hook_name} failed: {type(exc).__name__}: {exc}")
                    continue
                for decl in found:
                    other = table.get(decl.key)
                    if other is not None:
                        raise PluginError(
                            f"duplicate {kind} type key {decl.key!r}: registered by plugin "
                            f"{other.plugin!r} and by plugin {plugin_name!r}"
                        )
                    table[decl.key] = decl

        self.point_classes.clear()
        for plugin_name, call in self._callers("firebus_register_point_classes"):
            try:
                results = call(core=core)
                names = list((results[0] if results else None) or [])
                if not all(isinstance(n, str) and n for n in names):
                    raise TypeError(f"point classes must be non-empty strings, got {names!r}")
            except Exception as exc:
                self.unregister(plugin_name, f"firebus_register_point_classes failed: {type(exc).__name__}: {exc}")
                continue
            for name in names:
                self.point_classes.setdefault(name, plugin_name)

    def _callers(self, hook_name: str) -> list[tuple[str, Callable[..., Any]]]:
        """One caller per plugin implementing ``hook_name``, each going through pluggy.

        Through ``pm.subset_hook_caller`` rather than the implementation's function, so
        pluggy's tracing and hook-call monitoring see every call, while a plugin that
        raises is still told apart from the others (a plain ``pm.hook`` call stops at
        the first exception and would not say whose it was).
        """
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        everyone = [impl.plugin for impl in impls]
        return [(impl.plugin_name,
                 self.pm.subset_hook_caller(hook_name, remove_plugins=[p for p in everyone if p is not impl.plugin]))
                for impl in impls]

    @staticmethod
    def _declaration(kind: str, cls: Any, plugin: str) -> Declaration:
        key = getattr(cls, "type_key", None)
        if not isinstance(cls, type) or not isinstance(key, str) or not key:
            raise TypeError(f"{kind} declaration {cls!r} has no string type_key")
        return Declaration(kind=kind, key=key, cls=cls, plugin=plugin)

    def lookup(self, kind: str, key: str) -> type:
        decl = self.declarations[kind].get(key)
        if decl is None:
            known = ", ".join(sorted(self.declarations[kind])) or "none"
            raise KeyError(f"unknown {kind} type {key!r} (known: {known})")
        return decl.cls

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook plugin by plugin, isolating failures; returns (plugin, result) pairs."""
        results: list[tuple[str, Any]] = []
        for plugin_name, call in self._callers(hook_name):
            try:
                found = call(**kwargs)  # a list: this plugin's one result, or none if it returned None
                results.append((plugin_name, found[0] if found else None))
            except Exception as exc:
                log.exception("plugin %s: %s failed", plugin_name, hook_name)
                if self.strict:
                    raise PluginError(f"plugin {plugin_name}: {hook_name} failed: {exc}") from exc
                record = self.records.get(plugin_name)
                if record is not None:
                    record.error = f"{hook_name} failed: {type(exc).__name__}: {exc}"
        return results

    def listing(self) -> list[dict[str, Any]]:
        """Each plugin's record and what it declares (``declares``: kind → type keys, and the
        point classes it adds), once ``collect_declarations`` has run."""
        rows = []
        for name in sorted(self.records):
            row = self.records[name].as_dict()
            declares = {kind: sorted(key for key, d in table.items() if d.plugin == name)
                        for kind, table in self.declarations.items()}
            declares["point_class"] = sorted(c for c, p in self.point_classes.items() if p == name)
            row["declares"] = {kind: keys for kind, keys in declares.items() if keys}
            rows.append(row)
        return rows
