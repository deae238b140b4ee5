"""``firebus gb26875 decode|encode|vectors``: the codec on the command line.

Exit codes: 0 done, 1 invalid input (a frame that fails its checks, hex or JSON that
is not a frame), 2 usage (argparse).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta, timezone, tzinfo
from typing import Any

from .codec import DecodeOptions, Mode, decode
from .errors import CHECK_ERRORS, CodecError
from .framer import Framer, Rejected
from .jsonfmt import decoded_to_json, encode_json
from .model import CST
from .render import render
from .vectors import load_vectors


CHECK_ERROR_CODES = frozenset(str(c) for c in CHECK_ERRORS)


def parse_tz(text: str) -> tzinfo:
    """``+08:00`` / ``-05:30`` / ``UTC`` or an IANA name (``Asia/Shanghai``)."""
    m = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", text.strip())
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))
    if text.upper() == "UTC":
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(text)
    except Exception:  # zoneinfo raises several types for an unknown key
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r} (e.g. +08:00 or Asia/Shanghai)") from None


def _hex_input(text: str) -> bytes:
    if text == "-":
        text = sys.stdin.read()
    cleaned = re.sub(r"[\s:,_-]|0x", "", text.strip(), flags=re.IGNORECASE)
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise CodecInputError("input is not hexadecimal", "输入不是十六进制") from None


class CodecInputError(Exception):
    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.en, self.zh = en, zh


def _fail(args: argparse.Namespace, *, en: str, zh: str, detail: dict[str, Any] | None = None) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": detail or {"en": en, "zh": zh}}, ensure_ascii=False))
    else:
        print(f"错误 error: {zh} / {en}", file=sys.stderr)
    return 1


def cmd_decode(args: argparse.Namespace) -> int:
    mode = Mode.TOLERANT if args.tolerant else Mode.STRICT
    opts = DecodeOptions(mode=mode, tz=args.tz)
    try:
        data = _hex_input(args.hex)
    except CodecInputError as exc:
        return _fail(args, en=exc.en, zh=exc.zh)
    chunks: list[bytes | Rejected]
    if args.stream:
        framer = Framer()
        chunks = framer.feed(data) + framer.close()
    else:
        chunks = [data]
    results: list[dict[str, Any]] = []
    failed = False
    for chunk in chunks:
        if isinstance(chunk, Rejected):
            failed = True
            results.append({"error": chunk.error.to_json(), "raw": chunk.raw.hex().upper()})
            continue
        try:
            results.append(decoded_to_json(decode(chunk, options=opts)))
        except CodecError as exc:
            failed = True
            results.append({"error": exc.to_json(), "raw": chunk.hex().upper()})
    if args.json:
        if args.stream:
            print(json.dumps(results, ensure_ascii=False, indent=2))
        else:
            print(json.dumps(results[0], ensure_ascii=False, indent=2))
    else:
        for i, r in enumerate(results):
            if i:
                print()
            if "error" in r:
                e = r["error"]
                where = f"{e['field']}" + (f" @ 字节 byte {e['offset']}" if e["offset"] is not None else "")
                print(f"无效帧 invalid frame [{e['code']}] {where}: {e['zh']} / {e['en']}", file=sys.stderr)
                if not args.tolerant and e["code"] not in CHECK_ERROR_CODES:
                    print("  提示 hint: --tolerant 可解码并列出警告 / --tolerant decodes it and lists the warning",
                          file=sys.stderr)
            else:
                print(render(r))
    return 1 if failed else 0


def cmd_encode(args: argparse.Namespace) -> int:
    mode = Mode.TOLERANT if args.tolerant else Mode.STRICT
    try:
        if args.file:
            with open(args.file, encoding="utf-8") as fh:
                text = fh.read()
        elif args.json_text in (None, "-"):
            text = sys.stdin.read()
        else:
            text = args.json_text
    except OSError as exc:
        return _fail(args, en=f"cannot read {args.file}: {exc.strerror}", zh=f"无法读取 {args.file}：{exc.strerror}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return _fail(args, en=f"not JSON: {exc}", zh=f"不是 JSON：{exc}")
    frames = data if isinstance(data, list) else [data]
    out: list[str] = []
    for i, item in enumerate(frames):
        try:
            out.append(encode_json(item, mode, tz=args.tz).hex().upper())
        except CodecError as exc:
            prefix = f"[{i}] " if isinstance(data, list) else ""
            detail = exc.to_json()
            return _fail(args, en=f"{prefix}{exc.field}: {exc.en}", zh=f"{prefix}{exc.field}：{exc.zh}", detail=detail)
    for line in out:
        print(json.dumps({"hex": line}) if args.json else line)
    return 0


def cmd_vectors(args: argparse.Namespace) -> int:
    vectors = load_vectors()
    if args.json:
        print(json.dumps([{"name": v.name, "hex": v.hex, "meaning": v.meaning} for v in vectors],
                         ensure_ascii=False, indent=2))
    else:
        for v in vectors:
            print(f"{v.name}\t{v.hex}")
    return 0


def add_commands(cli: Any) -> None:
    p = cli.add_parser(
        "gb26875",
        help="GB/T 26875.3-2011 frames: decode, encode, reference vectors / 城市消防远程监控报文编解码",
        description="GB/T 26875.3-2011 城市消防远程监控系统报警传输网络通信协议: decode and encode frames. "
                    "Exit 1 for an invalid frame or input. See docs/plugins/gb26875.md.",
    )
    sub = p.add_subparsers(dest="gb26875_command", metavar="{decode,encode,vectors}")
    d = sub.add_parser("decode", help="decode a frame given in hex / 解码一帧（十六进制）",
                       description="Print a frame decoded: header, command, ADU type, objects with named "
                                   "state bits, codes with names, time tags. Exit 1 with the reason for an "
                                   "invalid frame.")
    d.add_argument("hex", help="the frame in hex (spaces allowed), or - for stdin")
    d.add_argument("--json", action="store_true", help="JSON output (the format encode reads)")
    d.add_argument("--tolerant", action="store_true",
                   help="tolerate the interoperability pitfalls and list them as warnings (default: strict)")
    d.add_argument("--stream", action="store_true",
                   help="the input is a captured byte stream: find and decode every frame in it")
    d.add_argument("--tz", type=parse_tz, default=CST, help="time zone of the time tags (default +08:00)")
    d.set_defaults(func=cmd_decode)
    e = sub.add_parser("encode", help="encode a frame from JSON / 由 JSON 编码一帧",
                       description="Read the JSON of docs/plugins/gb26875.md (argument, --file or stdin; an "
                                   "object or a list of objects) and print each frame as hex.")
    e.add_argument("json_text", nargs="?", metavar="JSON", help="the frame as JSON, or - for stdin (default)")
    e.add_argument("--file", "-f", help="read the JSON from this file")
    e.add_argument("--json", action="store_true", help='print {"hex": …} lines and errors as JSON')
    e.add_argument("--tolerant", action="store_true",
                   help="allow pitfalls (version ≠ 1, invalid time tags, counts over the maximum, missing "
                        "time tags, reserved types) to build test frames")
    e.add_argument("--tz", type=parse_tz, default=CST, help="time zone for the default time (default +08:00)")
    e.set_defaults(func=cmd_encode)
    v = sub.add_parser("vectors", help="list the reference test frames / 列出参考测试帧")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_vectors)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
