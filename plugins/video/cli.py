"""``firebus video eval PATH [--json]``: frame- and clip-level figures at the frozen operating point.

Human output is bilingual on every line (中文 English), like the other firebus commands;
``--json`` prints one JSON object on stdout.  Exit codes: 0 done, 2 bad input (path,
manifest, no data), 1 the shipped model cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_commands(cli: Any) -> None:
    p = cli.add_parser("video", help="视频火焰/烟雾识别 video flame/smoke recognition",
                       description="视频火焰/烟雾识别工具 video flame and smoke recognition tools")
    sub = p.add_subparsers(dest="video_cmd")
    e = sub.add_parser("eval", help="评估标注数据 score labelled images or clips",
                       description="Score a folder with fire/ smoke/ none/ sub-folders or a manifest.csv "
                                   "(path,label,group) at the frozen operating point shipped with the package. "
                                   "按随包发布的固定工作点评估。")
    e.add_argument("path", type=Path, help="folder or manifest.csv 文件夹或 manifest.csv")
    e.add_argument("--json", action="store_true", help="print one JSON object 输出一个 JSON 对象")
    e.add_argument("--fps", type=float, default=10.0, help="analysed frames per second of clips (default 10)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar 不显示进度条")
    e.set_defaults(func=cmd_eval)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _fail(args: argparse.Namespace, en: str, zh: str, code: int) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"en": en, "zh": zh}}, ensure_ascii=False))
    print(f"错误 error: {zh} / {en}", file=sys.stderr)
    return code


def cmd_eval(args: argparse.Namespace) -> int:
    from .classifier import ModelError, shipped
    from .evaluate import EvalError, evaluate, load_items

    if args.fps <= 0:
        return _fail(args, f"--fps must be positive (got {args.fps})", f"--fps 必须为正数（现为 {args.fps}）", 2)
    try:
        items = load_items(args.path)
    except EvalError as exc:
        return _fail(args, exc.en, exc.zh, 2)
    try:
        clf = shipped()
    except ModelError as exc:
        return _fail(args, str(exc), f"无法加载视频模型：{exc}", 1)
    result = evaluate(items, fps=args.fps, classifier=clf, progress=not args.no_progress)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    _print_human(result)
    return 0


def _fmt(v: Any) -> str:
    return "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _print_human(r: dict) -> None:
    names = {"fire": "火焰 fire", "smoke": "烟雾 smoke", "any": "任一 fire∪smoke"}
    print("帧级 frame level (单帧分类头 per-frame classifier head):")
    print(f"  {'':18} {'TPR':>7} {'FPR':>7} {'F1':>7} {'AUC':>7} {'阳性 pos':>9} {'阴性 neg':>9}")
    for k in ("fire", "smoke", "any"):
        m = r[k]
        print(f"  {names[k]:18} {_fmt(m['tpr']):>7} {_fmt(m['fpr']):>7} {_fmt(m['f1']):>7} "
              f"{_fmt(m.get('roc_auc')):>7} {m['n_pos']:>9} {m['n_neg']:>9}")
    if r.get("clips"):
        print("片段级 clip level (MIVIA):")
        for k in ("fire", "smoke"):
            c = r["clips"][k]
            print(f"  {names[k]:18} TPR {_fmt(c['tpr'])}  FP率 FP rate {_fmt(c['fp_rate'])}  "
                  f"准确率 accuracy {_fmt(c['accuracy'])}  延迟 latency p50 {_fmt(c['latency_p50_s'])} s "
                  f"p90 {_fmt(c['latency_p90_s'])} s  (pos {c['n_pos']}, neg {c['n_neg']})")
    op = r["operating_point"]
    print(f"工作点 operating point: fire ≥ {op['fire']}, smoke ≥ {op['smoke']} ({op['trained']})")
    if r["unreadable"]:
        print(f"无法读取 unreadable: {len(r['unreadable'])}")
        for u in r["unreadable"][:10]:
            print(f"  {u['path']}: {u['error']}")
