"""The OpenAPI 3.1 document for /api (kept next to the handlers; a test checks every route is in it)."""

from __future__ import annotations

from typing import Any

from firebus.sdk.orgs import OrgKind
from firebus.sdk.vocab import AlarmCategory

from .i18n import DEVICE_TYPES


def _param(name: str, where: str = "query", schema: dict[str, Any] | None = None, desc: str = "",
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "description": desc,
            "schema": schema or {"type": "string"}}


PAGE = [
    _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 500, "default": 100}),
    _param("offset", schema={"type": "integer", "minimum": 0, "default": 0}),
]
ERRORS = {
    "400": {"$ref": "#/components/responses/Error"},
    "401": {"$ref": "#/components/responses/Error"},
    "404": {"$ref": "#/components/responses/Error"},
}


def _list_of(ref: str) -> dict[str, Any]:
    return {"200": {"description": "a page", "content": {"application/json": {"schema": {
        "type": "object", "required": ["items", "total", "limit", "offset", "next_offset"],
        "properties": {"items": {"type": "array", "items": {"$ref": ref}}, "total": {"type": "integer"},
                       "limit": {"type": "integer"}, "offset": {"type": "integer"},
                       "next_offset": {"type": ["integer", "null"]}}}}}}, **ERRORS}


def _ok(desc: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"description": desc}
    if schema is not None:
        body["content"] = {"application/json": {"schema": schema}}
    return {"200": body, **ERRORS}


#: Every alarm object carries these (the stored record omits defaults; the API never does).
ALARM_REQUIRED = ["id", "category", "severity", "status", "active", "acknowledged", "silenced", "open",
                  "device_id", "point_id", "location_id", "unit_id", "device_name", "devices", "location_path",
                  "unit_name", "message", "message_zh", "start_ts", "verdict"]

ACTION_BODY = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "note": {"type": "string", "maxLength": 1000}}}}}, "required": False}


def openapi_document() -> dict[str, Any]:
    alarm_ref = "#/components/schemas/Alarm"
    action = {
        "parameters": [_param("alarm_id", "path"),
                       _param("X-CSRF-Token", "header", desc="required with a session cookie, not with a bearer token")],
        "requestBody": ACTION_BODY,
        "responses": {**_ok("the alarm after the action", {"$ref": alarm_ref}),
                      "403": {"$ref": "#/components/responses/Error"},
                      "409": {"$ref": "#/components/responses/Error"}},
    }
    verdict_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["verdict"], "properties": {
            "verdict": {"type": "string", "enum": ["real_fire", "false_alarm", "test"]},
            "note": {"type": "string", "maxLength": 1000}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "firebus API",
            "version": "1",
            "description": (
                "Read units, devices, point history and alarms; act on alarms; stream events. "
                "Authenticate with 'Authorization: Bearer <token>' (firebus token create USER) or the panel's "
                "session cookie plus X-CSRF-Token on writes. Users of a unit see only their units: anything else "
                "is 404, never the data. Lists are paged with limit/offset."
            ),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "firebus_session"},
            },
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"],
                                                          "properties": {"code": {"type": "string"},
                                                                         "message": {"type": "string"}}}}}}}}},
            "schemas": {
                "Media": {"type": "object", "required": ["id", "content_type", "bytes", "kind", "ts", "url"],
                          "properties": {
                    "id": {"type": "string"}, "content_type": {"type": "string"}, "bytes": {"type": "integer"},
                    "kind": {"type": "string", "enum": ["still", "clip", "other"]},
                    "ts": {"type": "number", "description": "the moment shown (epoch seconds)"},
                    "device_id": {"type": ["string", "null"], "description": "the camera"},
                    "start_ts": {"type": ["number", "null"]}, "end_ts": {"type": ["number", "null"]},
                    "created_ts": {"type": "number"},
                    "url": {"type": "string", "description": "GET it for the bytes"}}},
                "Me": {"type": "object", "required": ["name", "role", "units", "direct_units", "orgs", "all_units",
                                                      "can_act", "can_urge", "via"], "properties": {
                    "name": {"type": "string"},
                    "role": {"type": "string", "enum": ["admin", "integrator", "unit_manager", "duty_officer",
                                                        "maintenance_engineer", "supervisor", "fire_inspector"]},
                    "units": {"type": "array", "items": {"type": "string"},
                              "description": "every unit key the caller sees: direct and under their organisations "
                                             "(empty with all_units)"},
                    "direct_units": {"type": "array", "items": {"type": "string"}},
                    "orgs": {"type": "array", "items": {"type": "string"}, "description": "organisation keys"},
                    "all_units": {"type": "boolean"}, "can_act": {"type": "boolean"}, "can_urge": {"type": "boolean"},
                    "via": {"type": "string", "description": "session, token, ..."}}},
                "Organisation": {"type": "object", "required": ["key", "name", "kind", "units", "units_under", "children"],
                                 "properties": {
                    "key": {"type": "string"}, "name": {"type": "string"}, "name_en": {"type": "string"},
                    "kind": {"type": "string", "enum": [k.value for k in OrgKind]},
                    "parent": {"type": ["string", "null"]},
                    "units": {"type": "array", "items": {"type": "string"}, "description": "unit keys covered directly"},
                    "units_under": {"type": "array", "items": {"type": "string"},
                                    "description": "unit keys of the whole subtree"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Organisation"}}}},
                "Counts": {"type": "object", "properties": {k: {"type": "integer"} for k in ("alarm", "fault", "offline", "normal")}},
                "Unit": {"type": "object", "properties": {
                    "id": {"type": ["string", "null"]}, "key": {"type": "string"}, "name": {"type": "string"},
                    "devices": {"type": "integer"}, "open_alarms": {"type": "integer"},
                    "counts": {"$ref": "#/components/schemas/Counts"}, "buildings": {"type": "array"}}},
                "Device": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "driver": {"type": "string"},
                    "status": {"type": "string", "enum": ["alarm", "fault", "offline", "never_reported", "normal"]},
                    "availability": {"type": ["string", "null"]}, "last_report": {"type": ["number", "null"]},
                    "unit": {"type": ["object", "null"]}, "location": {"type": ["object", "null"]},
                    "location_path": {"type": "string"}, "open_alarms": {"type": "integer"}}},
                "DeviceDetail": {"allOf": [{"$ref": "#/components/schemas/Device"}, {"type": "object", "properties": {
                    "points": {"type": "array", "items": {"type": "object"}},
                    "alarms": {"type": "array", "items": {"$ref": alarm_ref}}}}]},
                "Alarm": {"type": "object", "required": ALARM_REQUIRED, "properties": {
                    "id": {"type": "string"},
                    "category": {"type": "string", "enum": [c.value for c in AlarmCategory]},
                    "severity": {"type": "integer"}, "peak_severity": {"type": "integer"},
                    "status": {"type": "string", "enum": ["active_unack", "active_ack", "cleared_unack", "cleared_ack"]},
                    "active": {"type": "boolean", "description": "the condition is present now"},
                    "acknowledged": {"type": "boolean"}, "silenced": {"type": "boolean"},
                    "open": {"type": "boolean", "description": "on the board: active, or reset but not acknowledged"},
                    "rule": {"type": "string"}, "rule_type": {"type": "string"},
                    "device_id": {"type": ["string", "null"]}, "point_id": {"type": ["string", "null"]},
                    "location_id": {"type": ["string", "null"]}, "unit_id": {"type": ["string", "null"]},
                    "device_name": {"type": "string", "description": "for a location-wide alarm (confirmed fire): "
                                                                    "the devices in alarm there, comma-separated"},
                    "devices": {"type": "array", "items": {"type": "object", "required": ["id", "name"], "properties": {
                        "id": {"type": "string"}, "name": {"type": "string"}}}},
                    "point_name": {"type": "string"}, "point_class": {"type": "string"}, "point_unit": {"type": "string"},
                    "location_path": {"type": "string"}, "unit_name": {"type": "string"},
                    "floor": {"type": ["object", "null"], "properties": {
                        "id": {"type": "string"}, "name": {"type": "string"}, "level": {"type": ["integer", "null"]}}},
                    "first_value": {}, "last_value": {}, "peak_value": {}, "count": {"type": "integer"},
                    "late": {"type": "boolean", "description": "shown only by readings that came after newer ones "
                                                              "(补报): start_ts is when it happened, clear_ts when "
                                                              "it was recorded"},
                    "first_reading_ts": {"type": ["number", "null"], "description": "on the readings' own (device) "
                                         "clock: the first reading that showed the alarm (null: raised by a timer)"},
                    "last_reading_ts": {"type": ["number", "null"], "description": "the device's time of the last "
                                        "reading that showed the alarm, or that showed it gone"},
                    "ended_by_reading": {"type": "boolean", "description": "last_reading_ts is a reading that "
                                         "showed the condition gone"},
                    "message": {"type": "string"}, "message_zh": {"type": "string"},
                    "text": {"type": "string", "description": "the message in the reader's language (?lang=zh|en)"},
                    "text_original": {"type": "string", "description": "the rule's own (English) text when "
                                                                          "'text' had to be composed in Chinese"},
                    "start_ts": {"type": "number"}, "last_ts": {"type": "number"},
                    "ack_ts": {"type": ["number", "null"]}, "ack_by": {"type": ["string", "null"]},
                    "clear_ts": {"type": ["number", "null"]}, "cleared_by": {"type": ["string", "null"]},
                    "silence_ts": {"type": ["number", "null"]}, "silenced_by": {"type": ["string", "null"]},
                    "verdict": {"type": ["string", "null"], "enum": ["real_fire", "false_alarm", "test", None]},
                    "verdict_ts": {"type": ["number", "null"]}, "verdict_by": {"type": ["string", "null"]},
                    "verdict_note": {"type": "string"},
                    "history": {"type": "array", "items": {"type": "object", "required": ["ts", "transition"],
                                                           "properties": {
                        "ts": {"type": "number"}, "transition": {"type": "string"}, "actor_kind": {"type": "string"},
                        "actor": {"type": "string"}, "detail": {"type": "object"}}}}}},
                "Plan": {"type": "object", "required": ["place", "path", "image", "devices"], "properties": {
                    "place": {"type": "object"}, "path": {"type": "string"}, "image": {"type": ["string", "null"]},
                    "width": {"type": ["integer", "null"]}, "height": {"type": ["integer", "null"]},
                    "devices": {"type": "array", "items": {"type": "object", "required": ["id", "name", "status", "x", "y"],
                                                           "properties": {
                        "id": {"type": "string"}, "name": {"type": "string"},
                        "status": {"type": "string", "enum": ["alarm", "fault", "offline", "never_reported", "normal"]},
                        "location_path": {"type": "string"},
                        "x": {"type": ["number", "null"]}, "y": {"type": ["number", "null"]}}}}}},
                "Plugin": {"type": "object", "properties": {
                    "name": {"type": "string"}, "status": {"type": "string"}, "version": {"type": ["string", "null"]},
                    "error": {"type": ["string", "null"]}}},
                "Notification": {"type": "object", "properties": {
                    "id": {"type": "string"}, "alarm_id": {"type": "string"}, "channel": {"type": "string"},
                    "recipient": {"type": "string"}, "status": {"type": "string"}, "attempts": {"type": "integer"}}},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/health": {"get": {"summary": "liveness; metrics for admin/integrator", "security": [],
                                    "responses": {"200": {"description": "running"}, "503": {"description": "starting"}}}},
            "/api/me": {"get": {"summary": "who the credentials belong to: role, organisations, the units they see",
                                "responses": _ok("the caller", {"$ref": "#/components/schemas/Me"})}},
            "/api/organisations": {"get": {
                "summary": "the organisation trees the caller may look at (admin, integrator: all; others: the "
                           "subtrees of their organisations, nothing above them), with unit keys",
                "responses": _ok("organisation trees", {"type": "object", "required": ["items", "total"], "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Organisation"}},
                    "total": {"type": "integer"}}})}},
            "/api/plugins": {"get": {"summary": "loaded plugins, versions, load errors (admin, integrator)",
                                     "responses": {**_ok("plugins"), "403": {"$ref": "#/components/responses/Error"}}}},
            "/api/metrics": {"get": {"summary": "bus queue depths, drops, errors; storage (admin, integrator)",
                                     "responses": {**_ok("metrics"), "403": {"$ref": "#/components/responses/Error"}}}},
            "/api/units": {"get": {"summary": "the caller's units with device counts by status and their places",
                                   "responses": _ok("units", {"type": "object", "properties": {"items": {
                                       "type": "array", "items": {"$ref": "#/components/schemas/Unit"}}}})}},
            "/api/devices": {"get": {"summary": "devices", "parameters": [
                _param("unit", desc="unit key or id"),
                _param("status", schema={"type": "string", "enum": ["alarm", "fault", "offline", "normal"]}),
                *PAGE], "responses": _list_of("#/components/schemas/Device")}},
            "/api/devices/{device_id}": {"get": {"summary": "a device: points with live values, its alarms",
                                                 "parameters": [_param("device_id", "path")],
                                                 "responses": _ok("device", {"$ref": "#/components/schemas/DeviceDetail"})}},
            "/api/points/{point_id}/history": {"get": {
                "summary": "a point's history: raw changes or 5-minute / hourly aggregates",
                "parameters": [
                    _param("point_id", "path"),
                    _param("since", desc="epoch seconds or ISO 8601; default until - 24 h"),
                    _param("until", desc="epoch seconds or ISO 8601; default now"),
                    _param("step", schema={"type": "string", "enum": ["auto", "raw", "5m", "1h"], "default": "auto"},
                           desc="auto: raw changes up to 2 days (if at most 5000), 5m up to 8 days, else 1h"),
                ],
                "responses": _ok("series")}},
            "/api/alarms": {"get": {"summary": "alarms, most urgent first", "parameters": [
                _param("status", schema={"type": "string", "enum": ["active", "open", "all"], "default": "open"},
                       desc="active: condition present; open: active or not yet acknowledged; all"),
                _param("unit", desc="unit key or id"),
                _param("category", schema={"type": "string", "enum": [c.value for c in AlarmCategory]}),
                _param("device", desc="device id"),
                *PAGE], "responses": _list_of(alarm_ref)}},
            "/api/alarms/{alarm_id}": {"get": {"summary": "an alarm with its history",
                                               "parameters": [_param("alarm_id", "path")],
                                               "responses": _ok("alarm", {"$ref": alarm_ref})}},
            "/api/alarms/{alarm_id}/ack": {"post": {"summary": "acknowledge (admin, integrator, unit manager, duty officer)", **action}},
            "/api/alarms/{alarm_id}/silence": {"post": {"summary": "silence reminders and sounders", **action}},
            "/api/alarms/{alarm_id}/verdict": {"post": {"summary": "record a fire alarm's verdict",
                                                        **{**action, "requestBody": verdict_body}}},
            "/api/alarms/{alarm_id}/media": {"get": {
                "summary": "stills and clips shown with an alarm (a camera's alarm: the still of the moment, "
                           "then a clip of 10 s before to 20 s after); authorised like the alarm",
                "parameters": [_param("alarm_id", "path")],
                "responses": _ok("the alarm's media, oldest first", {
                    "type": "object", "required": ["items", "total"], "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Media"}},
                        "total": {"type": "integer"}}})}},
            "/api/media/{media_id}": {"get": {
                "summary": "a medium's bytes (Range requests supported); 404 unless the caller sees an alarm "
                           "it is shown with",
                "parameters": [_param("media_id", "path")],
                "responses": {"200": {"description": "the bytes, with their content type", "content": {
                    ct: {"schema": {"type": "string", "format": "binary"}}
                    for ct in ("image/jpeg", "image/png", "image/webp", "video/mp4", "video/webm")}},
                    "206": {"description": "the requested range"}, **ERRORS}}},
            "/api/alarms/ack": {"post": {
                "summary": "acknowledge many alarms (roles that may act); one result per id",
                "parameters": [_param("X-CSRF-Token", "header", desc="required with a session cookie")],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["ids"], "properties": {
                        "ids": {"type": "array", "items": {"type": "string"}}, "note": {"type": "string", "maxLength": 1000}}}}}},
                "responses": {**_ok("results", {"type": "object", "required": ["results", "acknowledged"], "properties": {
                    "acknowledged": {"type": "integer"},
                    "results": {"type": "array", "items": {"type": "object", "required": ["id", "ok", "error"], "properties": {
                        "id": {"type": "string"}, "ok": {"type": "boolean"}, "error": {"type": ["string", "null"]}}}}}}),
                    "403": {"$ref": "#/components/responses/Error"}}}},
            "/api/devices/{device_id}/adopt": {"post": {
                "summary": "adopt a discovered device: type and location (admin, integrator); it is then trusted",
                "parameters": [_param("device_id", "path"), _param("X-CSRF-Token", "header", desc="with a session cookie")],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["device_type", "location"], "properties": {
                        "device_type": {"type": "string", "enum": list(DEVICE_TYPES)},
                        "location": {"type": "string", "description": "location id or site key"},
                        "name": {"type": "string", "maxLength": 100}}}}}},
                "responses": {**_ok("the device", {"$ref": "#/components/schemas/DeviceDetail"}),
                              "403": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}}}},
            "/api/points/{point_id}/thresholds": {"get": {
                "summary": "threshold levels of the rules on the point (chart bands)",
                "parameters": [_param("point_id", "path")],
                "responses": _ok("levels", {"type": "object", "required": ["items"], "properties": {
                    "point_id": {"type": "string"}, "unit": {"type": "string"},
                    "items": {"type": "array", "items": {"type": "object", "required": ["name", "value"], "properties": {
                        "rule": {"type": "string"}, "name": {"type": "string"}, "value": {"type": "number"},
                        "direction": {"type": "string", "enum": ["high", "low"]},
                        "category": {"type": ["string", "null"]}}}}}})}},
            "/api/points/{point_id}/history.csv": {"get": {
                "summary": "raw history as CSV (UTF-8 with BOM): time_iso, ts, value, fault; at most 31 days",
                "parameters": [_param("point_id", "path"), _param("since", desc="epoch seconds or ISO 8601"),
                               _param("until", desc="epoch seconds or ISO 8601")],
                "responses": {"200": {"description": "CSV", "content": {"text/csv": {}}}, **ERRORS}}},
            "/api/plans": {"get": {"summary": "floors the caller sees, whether each has a plan image",
                                   "responses": _ok("floors")}},
            "/api/plans/{place_id}": {"get": {
                "summary": "a floor's plan: image URL and size, devices under the floor with status and position",
                "parameters": [_param("place_id", "path")],
                "responses": _ok("plan", {"$ref": "#/components/schemas/Plan"})}},
            "/api/plans/{place_id}/image": {
                "get": {"summary": "the plan image", "parameters": [_param("place_id", "path")],
                        "responses": {"200": {"description": "image/png, image/jpeg or image/webp"}, **ERRORS}},
                "put": {"summary": "upload the plan image as the raw body (PNG, JPEG, WebP; ≤ 5 MB; admin, integrator, unit manager)",
                        "parameters": [_param("place_id", "path"), _param("X-CSRF-Token", "header", desc="with a session cookie")],
                        "requestBody": {"required": True, "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}},
                        "responses": {**_ok("plan", {"$ref": "#/components/schemas/Plan"}),
                                      "403": {"$ref": "#/components/responses/Error"},
                                      "413": {"$ref": "#/components/responses/Error"},
                                      "415": {"$ref": "#/components/responses/Error"}}}},
            "/api/plans/{place_id}/devices/{device_id}": {
                "put": {"summary": "place a device on the plan: x, y as fractions of the image (0–1)",
                        "parameters": [_param("place_id", "path"), _param("device_id", "path"),
                                       _param("X-CSRF-Token", "header", desc="with a session cookie")],
                        "requestBody": {"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["x", "y"], "properties": {
                                "x": {"type": "number", "minimum": 0, "maximum": 1},
                                "y": {"type": "number", "minimum": 0, "maximum": 1}}}}}},
                        "responses": {**_ok("position"), "403": {"$ref": "#/components/responses/Error"}}},
                "delete": {"summary": "take a device off the plan",
                           "parameters": [_param("place_id", "path"), _param("device_id", "path")],
                           "responses": {**_ok("position"), "403": {"$ref": "#/components/responses/Error"}}}},
            "/api/notifications": {"get": {"summary": "notification delivery log (notify plugin outbox)",
                                           "parameters": PAGE, "responses": _list_of("#/components/schemas/Notification")}},
            "/api/events": {"get": {
                "summary": "server-sent events: alarm, state, availability (filtered to the caller's units)",
                "parameters": [_param("types", desc="comma list of alarm,state,availability")],
                "responses": {"200": {"description": "text/event-stream; events 'alarm', 'state', 'availability', "
                                                     "'resync' (reload and reconnect), 'logout'",
                                      "content": {"text/event-stream": {}}}}}},
            "/api/journal": {"get": {
                "summary": "journal entries after a seq, oldest first, for outside consumers (admin, integrator)",
                "parameters": [
                    _param("after", desc="return entries with seq > after (default 0)", schema={"type": "integer"}),
                    _param("limit", desc="1–5000, default 500", schema={"type": "integer"}),
                    _param("types", desc="comma list of entry types, e.g. AlarmEvent,StateChanged"),
                    _param("lanes", desc="comma list of alarm,telemetry"),
                    _param("wait", desc="long poll: hold up to this many seconds (≤ 30) until an entry exists",
                           schema={"type": "number"})],
                "responses": {**_ok("entries", {"type": "object", "required": ["entries", "last_seq", "next_after"],
                                                "properties": {
                    "entries": {"type": "array", "items": {"type": "object", "required": [
                        "seq", "type", "lane", "time", "context", "data"], "properties": {
                        "seq": {"type": "integer"}, "type": {"type": "string"},
                        "lane": {"type": "string", "enum": ["alarm", "telemetry"]}, "time": {"type": "number"},
                        "context": {"type": "object"}, "data": {"type": "object"}}}},
                    "last_seq": {"type": "integer"}, "next_after": {"type": "integer"}}}),
                              "400": {"$ref": "#/components/responses/Error"},
                              "403": {"$ref": "#/components/responses/Error"}}}},
            "/api/journal/cursors": {"get": {"summary": "outside consumers' stored cursors (admin, integrator)",
                                             "responses": _ok("cursors")}},
            "/api/journal/cursors/{name}": {"put": {
                "summary": "store an outside consumer's cursor; it never moves back",
                "parameters": [_param("name", "path")],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["seq"], "properties": {"seq": {"type": "integer"}}}}}},
                "responses": {**_ok("the stored cursor"), "400": {"$ref": "#/components/responses/Error"},
                              "403": {"$ref": "#/components/responses/Error"}}}},
            "/api/openapi.json": {"get": {"summary": "this document", "security": [],
                                          "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
    }
