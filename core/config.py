"""The site file: YAML in, validated msgspec Structs out, errors with file:line:path.

Validation is msgspec's; line numbers come from PyYAML's node marks, mapped
from msgspec's ``$.devices[3].options.port`` error path, so an integrator
reads ``site.yaml:42: devices[3].options.port: expected int, got str``.
Secrets are never required in the file: ``${NAME}`` and ``${NAME:-default}``
in any string are replaced from the environment.
"""

from __future__ import annotations

import gc
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import msgspec
import yaml

from firebus.sdk.driver import PushDriver
from firebus.sdk.orgs import OrgNode, problems as org_problems


# libyaml's loader when present: most of a large site's cold start is parsing (bench/coldstart.py).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(Exception):
    """A problem in the site file, located as precisely as we can."""

    def __init__(self, file: str, line: int | None, path: str, message: str) -> None:
        self.file, self.line, self.path, self.message = file, line, path, message
        self.parts: tuple[Any, ...] = ()  # the path as keys and indices, when known
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {path}: {message}" if path else f"{where}: {message}")


class ConfigErrors(ConfigError):
    """Several problems at once (``firebus check`` reports them all); ``errors`` in file order."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.line, first.path, first.message)
        self.errors = errors
        self.args = ("\n".join(str(e) for e in errors),)
        #: the site file with the broken parts left out (``firebus check`` checks the rest too)
        self.partial: LoadedConfig | None = None


class _Errors:
    """Collects ConfigErrors so one pass reports every problem, not only the first."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(self, exc: ConfigError) -> None:
        self.errors.extend(exc.errors if isinstance(exc, ConfigErrors) else [exc])

    def raise_any(self, partial: "LoadedConfig | None" = None) -> None:
        if not self.errors:
            return
        if len(self.errors) == 1 and partial is None:
            raise self.errors[0]
        errors = ConfigErrors(sorted(self.errors, key=lambda e: e.line or 0))
        errors.partial = partial
        raise errors


# -- schema ------------------------------------------------------------------------------


class Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    pass


class SiteInfo(Strict):
    name: str = "firebus site"
    timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"


class StorageConfig(Strict):
    path: str = "data/firebus.db"
    # FULL: a reading acknowledged upstream survives power loss, not just a crash.
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    raw_retention_days: float = 30
    aggregate_5m_retention_days: float = 400
    #: most rows in one telemetry transaction (alarm-lane rows commit in their own, first)
    batch_max: int = 5000
    #: milliseconds a telemetry transaction waits for more readings before it commits, so a
    #: steady trickle shares one commit and one fsync (0: commit each at once); alarm-lane
    #: rows never wait, and neither does telemetry when a backlog is queued
    group_commit_ms: float = 10.0
    #: seconds between checkpoints of current point values (the journal holds every change
    #: in between, so a crash loses nothing; a longer interval writes less)
    state_checkpoint_s: float = 5.0
    #: most megabytes of alarm media (stills, clips) under <database folder>/media (0: no quota);
    #: past it the oldest media no alarm needs are deleted (core/media.py), never a fire alarm's
    media_quota_mb: float = 10240
    #: a medium attached to no alarm is deleted this long after it was stored
    media_unattached_hours: float = 24


class BackupConfig(Strict):
    """``backup: {every: 1d, keep: 7, to: /mnt/backup/firebus}``: the core backs the database
    up on its own (core/backup.py).  ``to`` is absolute or relative to the database's folder."""

    every: str | float = "1d"  # 30m, 12h, 1d, 1w, or seconds
    keep: int = 7  # newest backups kept in ``to``; older ones are deleted
    to: str = "backups"


class PluginsConfig(Strict):
    allow: list[str] | None = None
    block: list[str] = []
    strict: bool = False


class WebConfig(Strict):
    host: str = "127.0.0.1"
    port: int = 8080


class LocationConfig(Strict):
    key: str
    name: str = ""
    kind: str = ""  # kitchen, switch room, pump room, tank …


class FloorConfig(Strict):
    key: str
    name: str = ""
    level: int | None = None
    locations: list[LocationConfig] = []


class BuildingConfig(Strict):
    key: str
    name: str = ""
    address: str = ""
    floors: list[FloorConfig] = []


class GeoConfig(Strict):
    """Where a unit is, WGS-84 degrees (the supervision map); GCJ-02 shifts are the map's business."""

    lat: float
    lon: float


#: the usual unit types (``UnitConfig.kind`` is free text; these are what views group by)
UNIT_KINDS = ("school", "hospital", "mall", "factory", "warehouse", "hotel", "office", "residential",
              "public_entertainment", "other")


class UnitConfig(Strict):
    """A 联网单位: the organisation/site that owns buildings and answers for them."""

    key: str
    name: str = ""
    address: str = ""
    kind: str = ""  # unit type: one of UNIT_KINDS usually (free text)
    geo: GeoConfig | None = None
    buildings: list[BuildingConfig] = []


class TransportConfig(Strict):
    key: str
    type: str
    options: dict[str, Any] = {}


class DeviceConfig(Strict):
    key: str
    driver: str
    transport: str | None = None
    location: str | None = None
    name: str = ""
    identifiers: dict[str, str] = {}
    options: dict[str, Any] = {}
    enabled: bool = True
    #: What people set for this device, as the registry keeps it (applied at every start):
    #: per-point rule options, e.g. {points: {pressure: {rules: {threshold: {low: 0.07}}}}},
    #: or {expected_interval: 86400}.  The panel's own overrides of other keys are kept.
    overrides: dict[str, Any] = {}


class SiteConfig(Strict):
    site: SiteInfo = SiteInfo()
    storage: StorageConfig = StorageConfig()
    backup: BackupConfig | None = None
    plugins: PluginsConfig = PluginsConfig()
    web: WebConfig = WebConfig()
    units: list[UnitConfig] = []
    #: organisations above units (fire brigade → towns, regulators, maintenance companies):
    #: trees of ``firebus.sdk.orgs.OrgNode``; users assigned to one see every unit under it
    organisations: list[OrgNode] = []
    transports: list[TransportConfig] = []
    devices: list[DeviceConfig] = []
    # Validated by the alarm engine's AlarmConfig (rules, linkage, escalation).
    alarms: dict[str, Any] = {}
    # Sections owned by plugins (e.g. ``notify``) are validated by those plugins.
    notify: dict[str, Any] = {}
    reports: dict[str, Any] = {}
    gb26875: dict[str, Any] = {}  # the city monitoring uplink (plugins/gb26875)
    inspection: dict[str, Any] = {}  # patrols, hazards, duty records (plugins/inspection)
    federation: dict[str, Any] = {}  # site → centre replication (plugins/federation)


# -- loading -----------------------------------------------------------------------------

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class SourceMap:
    """Maps a path into the document (``("devices", 3, "options")``) to a 1-based line."""

    file: str
    root: yaml.Node | None
    #: the document's text once ``root`` is dropped: composed again only when a line is asked
    #: for (an error after start-up).  A 10,000-device site file's nodes are ~40 MB held for
    #: the life of the process otherwise.
    text: str | None = None

    def drop_nodes(self) -> None:
        if self.root is not None and self.text is not None:
            self.root = None

    def line(self, path: tuple[Any, ...]) -> int | None:
        if self.root is None and self.text is not None:
            try:
                self.root = yaml.compose(self.text, Loader=_Loader)
            except yaml.YAMLError:
                return None
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for part in path:
            child = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if key_node.value == part:
                        child = value_node
                        line = key_node.start_mark.line + 1
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line

    def error(self, path: tuple[Any, ...], message: str) -> ConfigError:
        return ConfigError(self.file, self.line(path), format_path(path), message)


def format_path(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_msgspec_path(text: str) -> tuple[Any, ...]:
    """``$.devices[3].options.port`` → ("devices", 3, "options", "port")."""
    parts: list[Any] = []
    for name, index in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", text.removeprefix("$")):
        parts.append(int(index) if index else name)
    return tuple(parts)


_MSG = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)


def convert(data: Any, type_: type, source: SourceMap, base: tuple[Any, ...] = ()) -> Any:
    """``msgspec.convert`` with errors turned into ``ConfigError`` at file:line:path."""
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as exc:
        match = _MSG.match(str(exc))
        assert match is not None
        path = base + parse_msgspec_path(match.group("path") or "$")
        message = match.group("msg")
        unknown = re.match(r"Object contains unknown field `([^`]*)`", message)
        if unknown:  # point at the offending key itself, not at its parent
            path += (unknown.group(1),)
            message = "unknown field (check spelling; see docs/configuration.md)"
        message = re.sub(r"`([^`]*)`", r"\1", message)
        message = message[0].lower() + message[1:] if message else message
        value = _value_at(data, path[len(base):])
        if value is not _MISSING and "got" in message and not isinstance(value, (dict, list)):
            message = re.sub(r"got \w+$", f"got {value!r}", message)
        error = source.error(path, message)
        error.parts = path
        raise error from None


_MISSING = object()


def _value_at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _substitute_env(node: yaml.Node, file: str, env: dict[str, str], errors: _Errors | None = None) -> None:
    if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str) and "${" in node.value:
        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            error = ConfigError(file, node.start_mark.line + 1, "", f"environment variable {name} is not set")
            if errors is None:
                raise error
            errors.add(error)
            return ""

        node.value = _ENV.sub(repl, node.value)
        if node.tag == "tag:yaml.org,2002:str" and not node.style:  # plain scalar (None or "")
            # Re-resolve plain scalars so "${PORT}" can become an int.
            node.tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, node.value, (True, False))
    elif isinstance(node, yaml.MappingNode):
        for _key, value in node.value:
            _substitute_env(value, file, env, errors)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _substitute_env(item, file, env, errors)


@dataclass
class LoadedConfig:
    site: SiteConfig
    source: SourceMap
    raw: dict[str, Any]
    path: Path


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Collections made rare while a site file is read: parsing and converting a large one
    allocates ~25 containers per device and frees none of them, so collections only walk
    them again (3 full ones, 0.1 s of a 50,000-device restart, bench/coldstart.py)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 200_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def load_text(text: str, file: str = "<string>", env: dict[str, str] | None = None, *,
              cache: bool = False) -> LoadedConfig:
    """Parse and check a site file's text.  ``cache``: reuse (and store) the parsed document
    of an unchanged file (``config_cache``): the checks still run, the YAML parse does not."""
    with _rare_collections():
        return _load_text(text, file, env, cache=cache)


def _load_text(text: str, file: str, env: dict[str, str] | None, *, cache: bool) -> LoadedConfig:
    env = dict(os.environ) if env is None else env
    if cache:
        from . import config_cache

        cached = config_cache.read(text, env)
        if cached is not None:
            loaded = _from_document(cached, SourceMap(file, None, text), file)
            if loaded is not None:
                return loaded
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(file, mark.line + 1 if mark else None, "", f"YAML syntax: {exc.problem}") from None
    source = SourceMap(file, root, text)
    errors = _Errors()
    if root is None:
        raw: Any = {}
    else:
        _substitute_env(root, file, env, errors)
        raw = _Loader(text).construct_document(root)
    if not isinstance(raw, dict):
        raise ConfigError(file, 1, "", "the site file must be a mapping at the top level")
    _share_device_strings(raw)
    site, doc = _convert_repairing(raw, source, errors)
    check_references(site, source, errors)
    _check_backup(site, source, errors)
    # ``partial``: what could be read, so `firebus check` checks the rest of the file too.
    errors.raise_any(LoadedConfig(site=site, source=source, raw=doc, path=Path(file)))
    source.drop_nodes()  # a valid file: lines are needed only for rare later errors
    if cache:
        from . import config_cache

        config_cache.write(text, env, raw)
    return LoadedConfig(site=site, source=source, raw=raw, path=Path(file))


def _share_device_strings(raw: dict[str, Any]) -> None:
    """Equal strings of the ``devices:`` list made one object (driver and transport names, a
    key repeated as the serial …): a parsed document has a copy per device, and both the
    document and its ``DeviceConfig`` are kept while the core runs."""
    devices = raw.get("devices")
    if not isinstance(devices, list):
        return
    pool: dict[str, str] = {}
    share = pool.setdefault
    for device in devices:
        if not isinstance(device, dict):
            continue
        for key, value in device.items():
            if type(value) is str:
                device[key] = share(value, value)
        identifiers = device.get("identifiers")
        if isinstance(identifiers, dict):
            for key, value in identifiers.items():
                if type(value) is str:
                    identifiers[key] = share(value, value)


def _from_document(raw: dict[str, Any], source: SourceMap, file: str) -> LoadedConfig | None:
    """A cached document through the same checks; None (parse afresh, with lines) on any error."""
    _share_device_strings(raw)
    try:
        site = convert(raw, SiteConfig, source)
        errors = _Errors()
        check_references(site, source, errors)
        _check_backup(site, source, errors)
        errors.raise_any(None)
    except ConfigError:
        return None
    return LoadedConfig(site=site, source=source, raw=raw, path=Path(file))


def _convert_repairing(raw: dict[str, Any], source: SourceMap, errors: _Errors) -> tuple[SiteConfig, Any]:
    """``convert`` to SiteConfig; on an error, record it, leave the bad value out (or stand in
    for a missing required one) and try again, so every structural problem is reported with
    the list indices (and lines) of the file as written.  msgspec stops at the first."""
    import copy

    doc: Any = raw
    for _ in range(200):
        try:
            return convert(doc, SiteConfig, source), doc
        except ConfigError as exc:
            errors.add(exc)
            if doc is raw:
                doc = copy.deepcopy(raw)
            if not _leave_out(doc, exc):
                break
    return SiteConfig(), doc


def _leave_out(doc: Any, exc: ConfigError) -> bool:
    parts = exc.parts
    missing = re.match(r"object missing required field (\S+)", exc.message)
    node = _value_at(doc, parts[:-1]) if parts else _MISSING
    if missing:
        target = _value_at(doc, parts)
        if isinstance(target, dict) and missing.group(1) not in target:
            target[missing.group(1)] = f"<missing {missing.group(1)}>"
            return True
        return False
    if isinstance(node, dict) and parts[-1] in node:
        del node[parts[-1]]
        return True
    if isinstance(node, list) and isinstance(parts[-1], int) and parts[-1] < len(node):
        node[parts[-1]] = {}  # keeps the indices of the items after it
        return True
    return False


def _check_backup(site: SiteConfig, source: SourceMap, errors: _Errors) -> None:
    if site.backup is None:
        return
    from firebus.sdk.durations import parse_duration

    try:
        parse_duration(site.backup.every)
    except ValueError as exc:
        errors.add(source.error(("backup", "every"), str(exc)))
    if site.backup.keep < 1:
        errors.add(source.error(("backup", "keep"), f"keep at least 1 backup, got {site.backup.keep}"))


def load_file(path: str | Path, env: dict[str, str] | None = None, *, cache: bool = True) -> LoadedConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, "", f"cannot read: {exc.strerror}") from None
    loaded = load_text(text, str(path), env, cache=cache)
    loaded.path = path
    return loaded


def check_references(site: SiteConfig, source: SourceMap, errors: _Errors | None = None) -> None:
    """Cross-field checks msgspec cannot do: unique keys and references that resolve."""
    collect = errors if errors is not None else _Errors()
    places: dict[str, tuple[Any, ...]] = {}

    def place(key: str, path: tuple[Any, ...]) -> None:
        if key in places:
            collect.add(source.error(path + ("key",), f"duplicate place key {key!r} (first at {format_path(places[key])})"))
            return
        places[key] = path

    for u, unit in enumerate(site.units):
        place(unit.key, ("units", u))
        for b, building in enumerate(unit.buildings):
            place(building.key, ("units", u, "buildings", b))
            for f, floor in enumerate(building.floors):
                place(floor.key, ("units", u, "buildings", b, "floors", f))
                for l_, loc in enumerate(floor.locations):
                    place(loc.key, ("units", u, "buildings", b, "floors", f, "locations", l_))
    for u, unit in enumerate(site.units):
        if unit.geo is not None:
            for field, limit in (("lat", 90.0), ("lon", 180.0)):
                value = getattr(unit.geo, field)
                if not -limit <= value <= limit:
                    collect.add(source.error(("units", u, "geo", field),
                                             f"{field} is WGS-84 degrees in [-{limit:g}, {limit:g}], got {value!r}"))
    for problem in org_problems(site.organisations, [u.key for u in site.units]):
        collect.add(source.error(problem.path, problem.message))
    for section in ("transports", "devices"):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(site, section)):
            if item.key in seen:
                collect.add(source.error((section, i, "key"),
                                         f"duplicate key {item.key!r} (first at {section}[{seen[item.key]}])"))
                continue
            seen[item.key] = i
    transports = {t.key for t in site.transports}
    for i, device in enumerate(site.devices):
        if device.transport is not None and device.transport not in transports:
            collect.add(source.error(("devices", i, "transport"), f"no transport with key {device.transport!r}"))
        if device.location is not None and device.location not in places:
            collect.add(source.error(("devices", i, "location"),
                                     f"no unit/building/floor/location with key {device.location!r}"))
    if errors is None:
        collect.raise_any()


def validate_options(loaded: LoadedConfig, plugin_host: Any) -> None:
    """Check each transport/device/rule type exists and its ``options`` fit its ``Options``."""
    site, source = loaded.site, loaded.source
    errors = _Errors()
    transport_types = {t.key: t.type for t in site.transports}
    checks = (("transports", "transport"), ("devices", "driver"))
    for section, kind in checks:
        for i, item in enumerate(getattr(site, section)):
            type_key = item.driver if kind == "driver" else item.type
            if type_key.startswith("<missing"):
                continue  # already reported
            try:
                cls = plugin_host.lookup(kind, type_key)
            except KeyError as exc:
                field = "driver" if kind == "driver" else "type"
                errors.add(source.error((section, i, field), str(exc.args[0])))
                continue
            if kind == "driver":
                _check_device_transport(source, i, item, cls, transport_types, errors)
            options_type = getattr(cls, "Options", None)
            if options_type is not None:
                try:
                    convert(item.options, options_type, source, (section, i, "options"))
                except ConfigError as exc:
                    errors.add(exc)
    try:
        alarm_config(loaded, plugin_host)
    except ConfigError as exc:
        errors.add(exc)
    errors.raise_any()


def _check_device_transport(source: SourceMap, i: int, device: DeviceConfig, cls: type,
                            transport_types: dict[str, str], errors: _Errors) -> None:
    """A driver that talks over a transport gets one of the kinds it declares
    (``Driver.transports``), or it would fail at run time."""
    kinds: tuple[str, ...] = tuple(getattr(cls, "transports", ()) or ())
    if device.transport is None:
        if issubclass(cls, PushDriver):
            errors.add(source.error(("devices", i), f"driver {device.driver!r} receives pushed messages: "
                                                    "give it a transport"))
        elif kinds:  # e.g. a Modbus driver: it would fail on its first poll
            errors.add(source.error(("devices", i), f"driver {device.driver!r} polls over "
                                                    f"{' or '.join(kinds)}: give it a transport"))
        return
    kind = transport_types.get(device.transport)
    if kinds and kind is not None and kind not in kinds:
        errors.add(source.error(("devices", i, "transport"),
                                f"transport {device.transport!r} is {kind}; driver {device.driver!r} runs on "
                                f"{', '.join(kinds)}"))


def alarm_config(loaded: LoadedConfig, plugin_host: Any) -> Any:
    """The ``alarms:`` section as the engine's AlarmConfig; rule types must be registered."""
    from .alarms import AlarmConfig

    config = convert(loaded.site.alarms, AlarmConfig, loaded.source, ("alarms",))
    known = plugin_host.declarations["rule"]
    for i, rule in enumerate(config.rules or []):
        if rule.type not in known:
            raise loaded.source.error(
                ("alarms", "rules", i, "type"),
                f"unknown rule type {rule.type!r} (known: {', '.join(sorted(known)) or 'none'})",
            )
        # Rule options are layered over per-point-class defaults, so they are checked
        # merged with those (a bare Options struct would reject ``{alarm: 400}``).
        check = getattr(known[rule.type].cls, "check_config", None)
        if check is not None:
            try:
                check(rule.options, rule.point_classes, rule.key)
            except ValueError as exc:
                raise loaded.source.error(("alarms", "rules", i, "options"), str(exc)) from None
    _check_linkage_filters(loaded, config)
    return config


def _check_linkage_filters(loaded: LoadedConfig, config: Any) -> None:
    """A linkage filter that names no device or place of the site would silently never fire
    (a pump that never starts): refuse it.  Keys from the site file are what people write;
    registry ids (ULIDs, 26 characters) are accepted as they are."""
    site = loaded.site
    devices = {d.key for d in site.devices}
    places: dict[str, set[str]] = {"units": set(), "locations": set()}
    for unit in site.units:
        places["units"].add(unit.key)
        for building in unit.buildings:
            places["locations"].add(building.key)
            for floor in building.floors:
                places["locations"].add(floor.key)
                for loc in floor.locations:
                    places["locations"].add(loc.key)

    def is_id(value: str) -> bool:
        return len(value) == 26 and value.isalnum() and value.upper() == value

    for i, rule in enumerate(config.linkage):
        for field, known, what in (("devices", devices, "device"), ("locations", places["locations"], "place"),
                                   ("units", places["units"], "unit")):
            for j, value in enumerate(getattr(rule.when, field)):
                if value not in known and not is_id(value):
                    raise loaded.source.error(
                        ("alarms", "linkage", i, "when", field, j),
                        f"linkage {rule.name!r}: no {what} {value!r} in this site file "
                        f"(known: {', '.join(sorted(known)) or 'none'})",
                    )


def device_options(loaded: LoadedConfig, index: int, cls: type) -> Any:
    device = loaded.site.devices[index]
    return convert(device.options, cls.Options, loaded.source, ("devices", index, "options"))
