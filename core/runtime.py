"""The running core: wires config, plugins, storage, registry, bus, transports and drivers.

Start-up order (each step's failure is reported with its cause):
plugins → declarations (duplicate keys stop here) → storage + migrations →
registry and state → places → transports → devices → plugins' startup hooks.
A transport or device that cannot be reached does not stop start-up: it is
retried in the background and shown as unavailable (a device offline at boot
is normal in the field).
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import inspect
import logging
import math
import secrets
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import anyio
from anyio.abc import TaskGroup

from firebus.sdk.clock import SystemClock
from firebus.sdk.context import Context, new_id
from firebus.sdk.core_api import Clock
from firebus.sdk.driver import NotReady, PolledDriver, PushDriver, Reading, ServiceDriver
from firebus.sdk.events import CommandRequested, CommandResult, Lane, LinkChanged, PayloadQuarantined
from firebus.sdk.extension import MessageTransport, Transport
from firebus.sdk.vocab import ActorKind, Availability

from .availability import AvailabilityTracker
from .bus import EventBus
from .alarms import ALARM_MIGRATIONS, AlarmEngine
from .config import (
    DeviceConfig,
    LoadedConfig,
    SiteConfig,
    alarm_config,
    convert,
    load_text,
    parse_msgspec_path,
    validate_options,
)
from .ingest import Ingest
from .priority import AlarmPriority
from .journal import Journal, state_resolver
from .media import MediaStore
from .plugins import PluginHost
from .registry import DeviceEntry, Registry
from .retention import downsample, purge
from .storage import SQL_QUARANTINE, Storage

#: (gen0, gen1, gen2) collector thresholds while running; CPython's are (700, 10, 10)
RUN_GC_THRESHOLDS = (10_000, 10, 100)

log = logging.getLogger("firebus.core")


class _TransportContext:
    def __init__(self, core: "Core", key: str) -> None:
        self.core = core
        self.key = key
        self.logger = logging.getLogger(f"firebus.transport.{key}")
        self.up: bool | None = None

    def link_changed(self, up: bool, reason: str = "") -> None:
        if self.up is up:
            return
        self.up = up
        self.core.bus.publish(
            LinkChanged(transport=self.key, up=up, reason=reason),
            Context(actor=ActorKind.SYSTEM, actor_id=f"transport:{self.key}"),
        )

    async def run_in_background(self, func: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> None:
        self.core.start_task(func, *args, name=name or f"transport:{self.key}")


class _DriverContext:
    """What a driver sees of the core (``firebus.sdk.DriverContext``)."""

    def __init__(self, core: "Core", transport: Any, name: str, device: DeviceEntry | None = None) -> None:
        self.core = core
        self.transport = transport
        self.device = device
        self.logger = logging.getLogger(f"firebus.driver.{name}")
        self.quarantined = 0

    @property
    def device_id(self) -> str | None:
        return self.device.id if self.device else None

    def set_availability(self, availability: Availability, reason: str = "") -> None:
        if self.device is not None:
            self.core.availability.set(self.device.id, availability, reason)

    async def report(self, readings: list[Reading]) -> None:
        if self.device is None:
            raise RuntimeError("report() is for polled drivers; push drivers return DeviceReports from decode()")
        for r in readings:
            if r.media:  # a still of this reading: the alarm it raises shows it (core/media.py)
                point = self.core.registry.point(self.device.id, r.point_key)
                if point is not None:
                    self.core.media.offer(point.id, tuple(r.media), self.core.clock.time())
        await self.core.ingest.ingest(self.device, readings, lane=self.core.lane_of(readings, self.device))

    def quarantine(self, source: str, raw: bytes, reason: str) -> None:
        self.quarantined += 1
        self.core.start_task(self.core.quarantine, source, raw, reason, name="quarantine")


class Core:
    """One running firebus site.  Use ``async with running_core(...)`` or ``await core.run()``."""

    def __init__(
        self,
        loaded: LoadedConfig,
        plugins: PluginHost,
        *,
        clock: Clock | None = None,
        base_dir: Path | None = None,
    ) -> None:
        self.config = loaded
        self.site: SiteConfig = loaded.site
        self.plugins = plugins
        self.clock: Clock = clock or SystemClock()
        self._master_key: bytes | None = None  # core_secret, read on first Core.secret()
        base = base_dir or loaded.path.parent
        db_path = Path(self.site.storage.path)
        self.db_path = db_path if db_path.is_absolute() else base / db_path
        self.bus = EventBus()
        self.storage = Storage(
            self.db_path, synchronous=self.site.storage.synchronous, batch_max=self.site.storage.batch_max,
            group_commit_s=self.site.storage.group_commit_ms / 1000.0,
        )
        self.registry = Registry(self.storage, self.bus)
        self.journal = Journal(self.storage, self.bus, state_resolver(self.registry), self.clock)
        self.ingest = Ingest(self.storage, self.registry, self.bus, now=self.clock.time,
                             checkpoint_s=self.site.storage.state_checkpoint_s)
        self.availability = AvailabilityTracker(self.bus, self._describe_device)
        self.priority = AlarmPriority()
        self.transports: dict[str, Transport] = {}
        self.polled: dict[str, PolledDriver] = {}  # device id → driver
        self.push: dict[tuple[str, str], PushDriver] = {}  # (transport, driver type) → driver
        self.services: dict[str, ServiceDriver] = {}  # device id → driver that runs by itself (cameras)
        self.media = MediaStore(self.storage, self.db_path.parent / "media", now=self.clock.time,
                                alarm_exists=self._alarm_exists,
                                quota_bytes=int(self.site.storage.media_quota_mb * 1024 * 1024),
                                unattached_s=self.site.storage.media_unattached_hours * 3600.0)
        self.device_ids: dict[str, str] = {}  # config key → device id
        self.poll_skips = 0
        self.quarantined = 0
        self.started_at: float | None = None
        self._tg: TaskGroup | None = None
        self._stop = anyio.Event()
        self._started = anyio.Event()
        self.alarms: AlarmEngine | None = None
        self.extras: dict[str, Any] = {}  # per-plugin runtime objects, keyed by plugin name

    async def _alarm_exists(self, alarm_id: str) -> bool:
        return self.alarms is not None and await self.alarms.get(alarm_id) is not None

    def _describe_device(self, device_id: str) -> str:
        device = self.registry.devices.get(device_id)
        return f"{device.config_key or device.name} ({device_id})" if device else device_id

    # -- CoreAPI -----------------------------------------------------------------------------

    def logger(self, name: str) -> logging.Logger:
        return logging.getLogger(f"firebus.plugin.{name}")

    def start_task(self, func: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> None:
        if self._tg is None:
            raise RuntimeError("the core is not running")
        self._tg.start_soon(self._guarded, func, args, name or getattr(func, "__name__", "task"), name=name)

    async def _guarded(self, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...], name: str) -> None:
        try:
            await func(*args)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            # A crashing plugin task must not take the core (and every other plugin) down.
            log.exception("background task %s crashed", name)

    async def quarantine(self, source: str, raw: bytes, reason: str, on_durable: Callable[[], None] | None = None) -> None:
        self.quarantine_now(source, raw, reason, on_durable)

    def quarantine_now(self, source: str, raw: bytes, reason: str, on_durable: Callable[[], None] | None = None) -> None:
        """Keep a payload that could not be decoded, with why; counted, journaled, then acknowledged."""
        self.quarantined += 1
        self.journal.append(
            PayloadQuarantined(source=source, reason=reason),
            Context(actor=ActorKind.SYSTEM, actor_id="quarantine"),
            parts=[(SQL_QUARANTINE, [(self.clock.time(), source, reason, raw)])], on_durable=on_durable,
        )

    def lane_of(self, readings: list[Reading], device: DeviceEntry) -> Lane:
        """Alarm lane if any reading is of an alarm-class point (polled drivers' readings)."""
        for r in readings:
            point = self.registry.point(device.id, r.point_key)
            if point is not None and point.alarm_class:
                return Lane.ALARM
        return Lane.TELEMETRY

    async def write_point(self, device_id: str, point_key: str, value: Any, context: Context | None = None) -> None:
        """Write a device point through its driver; records request and result on the bus.

        ``device_id`` may also be the device's key in the site file (linkage actions are
        written by people who know "fire-pump-2", not its registry id).
        """
        device_id = self.device_ids.get(device_id, device_id)
        command_id = new_id()
        ctx = context or Context(actor=ActorKind.SYSTEM)
        self.bus.publish(CommandRequested(command_id=command_id, device_id=device_id, point_key=point_key, value=value), ctx)
        result_ctx = ctx.child(ActorKind.DEVICE, device_id)
        try:
            device = self.registry.devices.get(device_id)
            if device is None:
                raise KeyError(f"unknown device {device_id}")
            polled = self.polled.get(device_id) or self.services.get(device_id)
            if polled is not None:
                await polled.write(point_key, value)
            else:
                push = self.push.get((device.transport or "", device.driver))
                if push is None:
                    raise RuntimeError(f"device {device_id} has no running driver")
                await push.write(device.identifiers, point_key, value)
        except Exception as exc:
            self.bus.publish(
                CommandResult(command_id=command_id, device_id=device_id, point_key=point_key, ok=False, error=f"{type(exc).__name__}: {exc}"),
                result_ctx,
            )
            raise
        self.bus.publish(CommandResult(command_id=command_id, device_id=device_id, point_key=point_key, ok=True), result_ctx)

    async def secret(self, purpose: str) -> bytes:
        """``firebus.sdk.CoreAPI.secret``: a 32-byte key for ``purpose``, stable for this database.

        Derived (HMAC-SHA256) from one random master key made on first use, so a plugin that
        signs (notify's links) and one that verifies (the app) agree without sharing code.
        """
        if not purpose:
            raise ValueError("secret(): name a purpose, e.g. 'links'")
        master = self._master_key
        if master is None:
            row = await self.storage.fetchone("SELECT master FROM core_secret WHERE id = 1")
            if row is None:
                await self.storage.execute(
                    "INSERT OR IGNORE INTO core_secret (id, master, created_ts) VALUES (1, ?, ?)",
                    (secrets.token_bytes(32), time.time()), lane=Lane.ALARM)
                row = await self.storage.fetchone("SELECT master FROM core_secret WHERE id = 1")
            assert row is not None
            master = self._master_key = bytes(row[0])
        return hmac.new(master, b"firebus/" + purpose.encode(), hashlib.sha256).digest()

    async def history(self, point_ids: Any, start: float, end: float, bucket: Any) -> Any:
        """``firebus.sdk.CoreAPI.history`` (core/history.py)."""
        from .history import read_history

        return await read_history(self.storage, point_ids, start, end, bucket)

    async def alarm_action(self, alarm_id: str, action: Any, actor: str, *, note: str = "",
                           context: Context | None = None) -> Any:
        """``firebus.sdk.CoreAPI.alarm_action`` (core/alarms/commands.py)."""
        from firebus.sdk.core_api import AlarmActionOutcome, AlarmActionResult

        if self.alarms is None:
            return AlarmActionResult(AlarmActionOutcome.REFUSED, "the alarm engine is not running")
        return await self.alarms.act(alarm_id, action, actor, note=note, context=context)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            await self._run(task_status)
        finally:
            with anyio.CancelScope(shield=True):
                await self.storage.close()

    async def _run(self, task_status: Any) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self.bus.attach(tg)
            from .web.auth import WEB_MIGRATIONS

            migrations = [*ALARM_MIGRATIONS, *WEB_MIGRATIONS]
            migrations += [m for _, ms in self.plugins.call_each("firebus_register_migrations", core=self) for m in (ms or [])]
            await self.storage.open(migrations)
            self.journal.start_seq = self.storage.last_seq
            self.journal.start_task = self.start_task
            await tg.start(self.storage.run_writer)
            # Start-up allocates the registry, states and rule plans (~600k objects at 10,000
            # devices) and nothing of it is garbage: collections while it is built only walk
            # it again and again (a third of the start-up time).  Collections are made rare,
            # not off (a long journal catch-up must still free its cycles), and the result
            # is frozen below.  Rare in proportion to the site: the rows of one table (4 per
            # device at 4 points each) are alive at once while it loads, and each 200,000
            # of them made a collection (5 in a 50,000-device restart, 0.28 s).
            thresholds = gc.get_threshold()
            gc.set_threshold(max(thresholds[0], 200_000, 12 * len(self.site.devices)), *thresholds[1:])
            try:
                try:
                    await self._start()
                finally:
                    gc.set_threshold(*thresholds)
                # What start-up built (registry, states, rules) lives as long as the process:
                # keep the collector from walking it again and again under load.  No
                # collection first: with the raised threshold the young generations hold the
                # whole registry, and collecting them found nothing at 10,000 devices for
                # 68 ms of start-up (gc.collect(1); a full pass ~0.3 s) — start-up makes
                # almost no cycles, and the few it might are frozen once, not leaked again.
                gc.freeze()
                # Under load the live set is large (messages held for their PUBACK, queued
                # journal entries) and a full collection walks it: ~40 ms of the loop each,
                # 28 in a 20 s ingest run (bench/ingest.py, measured 2026-12-03).  Cycles
                # are rare here, so full collections are made ten times rarer.
                gc.set_threshold(*RUN_GC_THRESHOLDS)
                self.started_at = time.time()
                self._started.set()
                task_status.started(self)
                await self._stop.wait()
                await self._shutdown()
            finally:
                gc.set_threshold(*thresholds)
                with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                    await self.storage.barrier()
                tg.cancel_scope.cancel()

    def stop(self) -> None:
        self._stop.set()

    async def _start(self) -> None:
        await self.registry.load()
        await self.ingest.load()
        await self.media.load()  # before the engine: a replayed reading claims its still again
        await self.registry.sync_places(self.site)
        # The engine subscribes before any device reports, so no first reading is missed.
        rule_types = [d.cls for d in self.plugins.declarations["rule"].values()]
        self.alarms = AlarmEngine(self, rule_types, alarm_config(self.config, self.plugins), self._linkage_handlers())
        await self.alarms.start()
        # A device's message is acknowledged once on disk and evaluated: the transports'
        # in-flight windows then bound how far the engine can fall behind under overload.
        assert self.alarms.consumer is not None
        self.storage.ack_gate = self.alarms.consumer.gate
        self.storage.on_urgent = self.priority.urgent
        for transport_cfg in self.site.transports:
            cls = self.plugins.lookup("transport", transport_cfg.type)
            options = convert(transport_cfg.options, cls.Options, self.config.source,
                              ("transports", self.site.transports.index(transport_cfg), "options"))
            transport = cls(transport_cfg.key, options, _TransportContext(self, transport_cfg.key))
            self.transports[transport_cfg.key] = transport
            self.priority.add(transport)
            if hasattr(transport, "set_unrouted_handler"):
                transport.set_unrouted_handler(self._unrouted_handler(transport_cfg.key))
            try:
                await transport.start()
            except Exception as exc:
                log.error("transport %s failed to start: %s", transport_cfg.key, exc)
        configured: list[str] = []
        for index, device_cfg in enumerate(self.site.devices):
            if not device_cfg.enabled:
                continue
            device_id = await self._start_device(index, device_cfg)
            if device_id:
                configured.append(device_id)
        await self.registry.orphan_missing(configured)
        self.start_task(self._housekeeping, name="housekeeping")
        # Current values to point_state now and then: a crash replays at most this much journal.
        # Paced by real time, not the site clock: a test's clock jumping a day must not run
        # 17,280 passes, and what it paces is disk work.
        self.start_task(self.ingest.run_checkpoints, anyio.sleep, name="ingest:checkpoints")
        if self.site.backup is not None:  # `backup:` in the site file (core/backup.py)
            from firebus.sdk.durations import parse_duration

            from .backup import backup_folder, run_schedule

            b = self.site.backup
            self.start_task(run_schedule, self.storage.path, parse_duration(b.every), b.keep,
                            backup_folder(self.storage.path, b.to), name="backup")
        for name, result in self.plugins.call_each("firebus_startup", core=self):
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception:
                    log.exception("plugin %s: startup failed", name)

    async def _start_device(self, index: int, device_cfg: DeviceConfig) -> str | None:
        cls = self.plugins.lookup("driver", device_cfg.driver)
        transport = self.transports.get(device_cfg.transport) if device_cfg.transport else None
        identifiers = dict(device_cfg.identifiers) or {"config": device_cfg.key}

        def options() -> Any:  # checked for every device in prepare(); built where a driver is
            return convert(device_cfg.options, cls.Options, self.config.source, ("devices", index, "options"))

        if issubclass(cls, ServiceDriver):
            device = await self.registry.resolve_device(
                identifiers, driver=cls.type_key, transport=None, config_key=device_cfg.key,
                location_key=device_cfg.location,
            )
            await self._overrides_from_config(device, device_cfg)
            ctx = _DriverContext(self, None, cls.type_key, device)
            service = cls(options(), ctx)
            info = service.device_info()
            if info is not None:
                device = ctx.device = await self.registry.resolve_device(
                    identifiers, driver=cls.type_key, transport=None, config_key=device_cfg.key,
                    location_key=device_cfg.location, info=info,
                )
            await self.registry.ensure_points(device.id, service.points())
            self.services[device.id] = service
            self.device_ids[device_cfg.key] = device.id
            self.start_task(self._run_service, service, ctx, name=f"service:{device_cfg.key}")
            return device.id
        if issubclass(cls, PushDriver):
            if not device_cfg.identifiers:
                raise ValueError(f"devices[{index}] ({device_cfg.key}): push devices need identifiers (IMEI, serial …)")
            device = await self.registry.resolve_device(
                identifiers, driver=cls.type_key, transport=device_cfg.transport,
                config_key=device_cfg.key, location_key=device_cfg.location,
            )
            await self._overrides_from_config(device, device_cfg)
            key = (device_cfg.transport or "", cls.type_key)
            if key not in self.push:
                driver = cls(options(), _DriverContext(self, transport, cls.type_key))
                self.push[key] = driver
                self._subscribe_push(transport, driver, device_cfg.transport or "")
            self.device_ids[device_cfg.key] = device.id
            return device.id
        # Polled: register under the configured identity now (so it shows as unavailable
        # while unreachable); the driver's own identifiers are merged in after setup.
        device = await self.registry.resolve_device(
            identifiers, driver=cls.type_key, transport=device_cfg.transport,
            config_key=device_cfg.key, location_key=device_cfg.location,
        )
        await self._overrides_from_config(device, device_cfg)
        ctx = _DriverContext(self, transport, cls.type_key, device)
        driver = cls(options(), ctx)
        self.polled[device.id] = driver
        self.device_ids[device_cfg.key] = device.id
        self.start_task(self._run_polled, driver, ctx, device_cfg, name=f"poll:{device_cfg.key}")
        return device.id

    async def _run_service(self, service: ServiceDriver, ctx: _DriverContext) -> None:
        """``start()`` until it succeeds (unavailable meanwhile); the service runs by itself after."""
        assert ctx.device is not None
        delay = 1.0
        while True:
            try:
                await service.start()
                return
            except Exception as exc:
                kind = "not ready" if isinstance(exc, NotReady) else f"start failed ({type(exc).__name__})"
                log.warning("service %s: %s: %s", ctx.device.id, kind, exc)
                self.availability.set(ctx.device.id, Availability.UNAVAILABLE, f"{kind}: {exc}")
                try:
                    with anyio.fail_after(10):
                        await service.stop()  # release what the failed start took before trying again
                except Exception:
                    log.exception("service %s: stop after a failed start failed", ctx.device.id)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 60.0)

    def _subscribe_push(self, transport: Any, driver: PushDriver, transport_key: str) -> None:
        batch = getattr(transport, "subscribe_batch", None)
        alarm_topics = set(driver.alarm_subscriptions())
        classify = getattr(driver, "lane_of", None)
        for pattern in [*driver.subscriptions(), *sorted(alarm_topics - set(driver.subscriptions()))]:
            if batch is not None:
                lane = Lane.ALARM if pattern in alarm_topics else Lane.TELEMETRY
                batch(pattern, self._push_batch_handler(driver, transport_key), lane=lane,
                      classify=None if lane is Lane.ALARM else classify)
            else:
                transport.subscribe(pattern, self._push_handler(driver, transport_key))

    async def _overrides_from_config(self, device: DeviceEntry, cfg: DeviceConfig) -> None:
        if device.config_name != cfg.name:  # the name is in its points' PointInfo
            device.config_name = cfg.name
            self.registry._invalidate_device(device.id)
        if cfg.overrides:
            await self.registry.set_device_overrides(device.id, **cfg.overrides)

    async def _run_polled(self, driver: PolledDriver, ctx: _DriverContext, cfg: DeviceConfig) -> None:
        assert ctx.device is not None
        delay = 1.0
        while True:
            try:
                info = await driver.setup()
                break
            except Exception as exc:
                kind = "not ready" if isinstance(exc, NotReady) else f"setup failed ({type(exc).__name__})"
                self.availability.set(ctx.device.id, Availability.UNAVAILABLE, f"{kind}: {exc}")
                await self.clock.sleep(delay)
                delay = min(delay * 2, 60.0)
        provisional = ctx.device
        ctx.device = await self.registry.resolve_device(
            {**provisional.identifiers}, driver=driver.type_key, transport=cfg.transport,
            config_key=cfg.key, location_key=cfg.location, info=info,
        )
        if ctx.device.id != provisional.id:
            self.polled.pop(provisional.id, None)
            self.availability.current.pop(provisional.id, None)
            self.polled[ctx.device.id] = driver
            self.device_ids[cfg.key] = ctx.device.id
        await self.registry.ensure_points(ctx.device.id, driver.points())
        interval = max(0.05, float(getattr(driver, "poll_interval", 5.0)))
        interval = float(getattr(driver.options, "poll_interval", interval) or interval)
        next_due = self.clock.time()
        while True:
            try:
                with anyio.fail_after(max(interval * 3, 10.0)):
                    readings = await driver.poll()
            except Exception as exc:
                self.availability.set(ctx.device.id, Availability.UNAVAILABLE, f"{type(exc).__name__}: {exc}")
            else:
                self.availability.set(ctx.device.id, Availability.AVAILABLE)
                await self.ingest.ingest(ctx.device, readings, lane=self.lane_of(readings, ctx.device))
            next_due += interval
            now = self.clock.time()
            if now > next_due:
                # The cycle overran: skip the missed cycles instead of queueing them.
                missed = math.floor((now - next_due) / interval) + 1
                self.poll_skips += missed
                next_due += missed * interval
            await self.clock.sleep(next_due - now)

    def _push_handler(self, driver: PushDriver, transport_key: str) -> Callable[..., Awaitable[None]]:
        """The per-message handler (transports without the batch path)."""
        source = f"{transport_key}/{driver.type_key}"

        async def handle(topic: str, payload: bytes, ack: Callable[[], None]) -> None:
            if self.storage.congested:
                await self.storage.wait_room()
            self._push_one(driver, transport_key, source, topic, payload, ack, None, False, None)

        return handle

    def _push_batch_handler(self, driver: PushDriver, transport_key: str) -> Callable[[list[Any]], None]:
        """The batch handler for transports with ``subscribe_batch`` (the MQTT hub): synchronous,
        no task or coroutine per message; each message is acknowledged once its rows commit."""
        source = f"{transport_key}/{driver.type_key}"
        push_one = self._push_one

        def handle(messages: list[Any]) -> None:
            for m in messages:
                push_one(driver, transport_key, source, m.topic, m.payload, m.ack, m.lane, m.dup, m.received)

        return handle

    def _push_one(
        self, driver: PushDriver, transport_key: str, source: str, topic: str, payload: bytes,
        ack: Callable[[], None], lane: Lane | None, dup: bool, received: float | None,
    ) -> None:
        try:
            reports = driver.decode(topic, payload)
        except Exception as exc:
            # Counted and kept with the reason; acknowledged once the quarantine row is durable.
            self.quarantine_now(f"{source}:{topic}", payload, f"{type(exc).__name__}: {exc}", ack)
            return
        if not reports:
            ack()
            return
        last = len(reports) - 1
        for i, report in enumerate(reports):
            device = self.registry.find_device(report.identifiers)
            if device is None:
                device = self.registry.register_discovered(
                    report.identifiers, driver=driver.type_key, transport=transport_key, info=report.info,
                )
                log.info("discovered unknown device %s on %s (not trusted until configured)",
                         report.identifiers, source)
            points = self.registry.point
            for r in report.readings:
                if points(device.id, r.point_key) is None:
                    self.registry.ensure_points_now(device.id, driver.points_for(report))
                    break
            if self.availability.current.get(device.id) is not Availability.AVAILABLE:
                self.availability.set(device.id, Availability.AVAILABLE)
            self.ingest.apply(
                device, report.readings, lane=lane or Lane.TELEMETRY, received=received, redelivered=dup,
                on_durable=ack if i == last else None,
            )

    def _unrouted_handler(self, transport_key: str) -> Callable[..., Awaitable[None]]:
        async def unrouted(topic: str, payload: bytes, ack: Callable[[], None]) -> None:
            # Kept with the reason, then acknowledged so it cannot hold the in-flight window.
            await self.quarantine(f"{transport_key}:{topic}", payload, "no driver subscribes to this topic", ack)

        return unrouted

    async def _housekeeping(self) -> None:
        cfg = self.site.storage
        while True:
            await self.clock.sleep(60)
            try:
                await self.media.purge()
                await self.media.enforce_quota()
            except Exception:
                log.exception("media purge failed; will retry")
            try:
                await downsample(self.storage)
                await purge(
                    self.storage, raw_retention_days=cfg.raw_retention_days,
                    aggregate_5m_retention_days=cfg.aggregate_5m_retention_days, now=self.clock.time(),
                )
            except Exception:
                log.exception("housekeeping pass failed; will retry")

    async def _shutdown(self) -> None:
        for name, result in self.plugins.call_each("firebus_shutdown", core=self):
            if inspect.isawaitable(result):
                try:
                    with anyio.fail_after(10):
                        await result
                except Exception:
                    log.exception("plugin %s: shutdown failed", name)
        if self.alarms is not None:
            try:
                with anyio.fail_after(10):
                    await self.alarms.stop()
            except Exception:
                log.exception("alarm engine: stop failed")
        for device_id, service in self.services.items():
            try:
                with anyio.fail_after(10):
                    await service.stop()
            except Exception:
                log.exception("service %s: stop failed", device_id)
        drivers = [*self.polled.values(), *self.push.values(), *self.services.values()]
        for driver in drivers:
            try:
                with anyio.fail_after(5):
                    await driver.close()
            except Exception:
                log.exception("driver %s: close failed", driver.type_key)
        for key, transport in self.transports.items():
            try:
                with anyio.fail_after(5):
                    await transport.stop()
            except Exception:
                log.exception("transport %s: stop failed", key)
        try:
            await self.bus.drain(timeout=5)
        except TimeoutError:
            # A plugin handler that never returns must not turn an orderly stop into a crash.
            busy = [name for name, sub in self.bus.metrics()["subscribers"].items() if sub["depth"]]
            log.error("shutdown: bus subscribers still busy after 5 s: %s", busy)

    def plugin_config(self, name: str) -> dict[str, Any]:
        section = self.config.raw.get(name)
        if isinstance(section, list):  # a list section (``organisations``): a copy of the list
            return list(section)  # type: ignore[return-value]
        return dict(section or {})

    def declared_types(self, kind: str) -> dict[str, type]:
        return {key: decl.cls for key, decl in self.plugins.declarations[kind].items()}

    async def mqtt_publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, *, transport: str | None = None
    ) -> None:
        candidates = [
            t for key, t in self.transports.items()
            if isinstance(t, MessageTransport) and (transport is None or key == transport)
        ]
        if not candidates:
            raise RuntimeError(f"no MQTT transport {transport or ''} configured to publish {topic!r}".replace("  ", " "))
        await candidates[0].publish(topic, payload, qos=qos, retain=retain)

    def _linkage_handlers(self) -> dict[str, Any]:
        from .alarms import make_mqtt_publish_handler

        return {"mqtt_publish": make_mqtt_publish_handler(self.mqtt_publish)}

    def metrics(self) -> dict[str, Any]:
        return {
            "bus": self.bus.metrics(),
            "storage": self.storage.metrics(),
            "journal": self.journal.metrics(),
            "ingest": self.ingest.metrics(),
            "transports": {k: t.stats() for k, t in self.transports.items() if hasattr(t, "stats")},
            "poll_skips": self.poll_skips,
            "alarm_priority": self.priority.metrics(),
            "quarantined": self.quarantined,
            "media": self.media.metrics(),
            "alarms": self.alarms.metrics() if self.alarms else {},
        }


def build_plugin_host(site: SiteConfig, *, extra_plugins: dict[str, object] | None = None, autoload: bool | None = None) -> PluginHost:
    from . import builtin

    host = PluginHost(allow=site.plugins.allow, block=site.plugins.block, strict=site.plugins.strict or None, autoload=autoload)
    host.register(builtin, name="core")
    host.load_entry_points()
    for name, plugin in (extra_plugins or {}).items():
        host.register(plugin, name=name)
    return host


def prepare(loaded: LoadedConfig, host: PluginHost, core: "Core | None" = None) -> None:
    """Declarations, then every check that can fail before anything starts."""
    from .config import ConfigError, _Errors

    host.collect_declarations(core)
    errors = _Errors()  # `firebus check` lists every problem, the core's and the plugins'
    try:
        validate_options(loaded, host)
    except ConfigError as exc:
        errors.add(exc)
    for plugin, problems in host.call_each("firebus_validate_site", core=core, site=loaded.raw):
        for problem in problems or []:
            path = parse_msgspec_path("$." + problem.path)
            errors.add(loaded.source.error(path, f"{problem.message} (plugin {plugin})"))
    errors.raise_any()


@asynccontextmanager
async def running_core(
    loaded: LoadedConfig | str,
    *,
    extra_plugins: dict[str, object] | None = None,
    autoload: bool | None = None,
    clock: Clock | None = None,
    base_dir: Path | None = None,
    before_start: Callable[[Core], None] | None = None,
) -> AsyncIterator[Core]:
    """Start a core for the duration of the block (tests, demo, embedding).

    ``before_start(core)`` runs once the core is built and checked but before it
    starts, e.g. to subscribe an event recorder that must see the first reading.
    """
    if isinstance(loaded, str):
        loaded = load_text(loaded, "<string>")
    host = build_plugin_host(loaded.site, extra_plugins=extra_plugins, autoload=autoload)
    core = Core(loaded, host, clock=clock, base_dir=base_dir)
    prepare(loaded, host, core)
    if before_start is not None:
        before_start(core)
    async with anyio.create_task_group() as tg:
        await tg.start(core.run)
        try:
            yield core
        finally:
            core.stop()
