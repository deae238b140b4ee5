"""``firebus sdk check [PATH]``: the hassfest of firebus.

Validates a plugin package the way the core will see it, before it reaches a site:
manifest, entry point, hook signatures, no exact pins on the core's dependencies,
profiles (and that they ship in the wheel), point classes, tests.  Every problem is one
clear line; ``check_package`` collects them all, ``print_report`` prints them and gives
the exit status, ``run_tests`` adds the package's own test run (``--tests``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata as md
import inspect
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..manifest import API_VERSION, Manifest, sdk_compatible
from ..profile_data import parse_profile_data

ENTRY_POINT_GROUP = "firebus.plugins"
#: a plugin's name: the entry-point name, and NAME in ``firebus sdk new NAME``
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
_REQ_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Problem:
    severity: str  # "error" | "warning"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


@dataclass
class CheckReport:
    root: Path
    problems: list[Problem] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem("error", where, message))

    def warning(self, where: str, message: str) -> None:
        self.problems.append(Problem("warning", where, message))

    def ok(self, what: str) -> None:
        self.passed.append(what)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def core_requirements() -> set[str]:
    """Normalised names of the packages firebus itself depends on (plus firebus)."""
    names = {"firebus"}
    try:
        reqs = md.requires("firebus") or []
    except md.PackageNotFoundError:
        reqs = []
    for req in reqs:
        if "extra ==" in req:
            continue
        m = _REQ_RE.match(req.split(";")[0])
        if m:
            names.add(_norm(m.group(1)))
    return names


def exact_pin(requirement: str) -> tuple[str, str] | None:
    """``(name, spec)`` if ``requirement`` pins one version (``==1.2``, ``===1.2``); ranges and ``==1.*`` pass."""
    m = _REQ_RE.match(requirement.split(";")[0])
    if not m:
        return None
    name, spec = m.group(1), m.group(3).strip().lstrip("(").rstrip(")")
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        if clause.startswith("===") or (clause.startswith("==") and not clause.endswith("*")):
            return _norm(name), clause
    return None


def _module_root(root: Path, module: str) -> Path | None:
    top = module.split(".")[0]
    for base in (root / "src", root):
        if (base / top).is_dir() or (base / f"{top}.py").is_file():
            return base
    return None


def _import_fresh(base: Path, module: str) -> Any:
    """Import ``module`` from ``base`` (not from any installed copy), leaving no trace behind."""
    top = module.split(".")[0]

    def forget() -> None:
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]

    forget()
    sys.path.insert(0, str(base))
    importlib.invalidate_caches()
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(base))
        forget()


def _check_hooks(report: CheckReport, where: str, plugin: Any) -> list[type]:
    """Hook names, markers and signatures; returns the classes the declaring hooks return."""
    import pluggy

    from .. import hookspecs

    pm = pluggy.PluginManager("firebus")
    pm.add_hookspecs(hookspecs)
    known = {n for n in dir(hookspecs) if n.startswith("firebus_")}
    marker = "firebus_impl"
    for name, func in inspect.getmembers(plugin, callable):
        if not name.startswith("firebus_") or name == "firebus_manifest":
            continue
        if not hasattr(func, marker):
            report.error(where, f"{name} is not decorated with @firebus.sdk.hookimpl: the core would never call it")
            continue
        if name not in known:
            report.error(where, f"{name} is not a firebus hook (known: {', '.join(sorted(known))})")
            continue
        for param in inspect.signature(func).parameters.values():
            if param.default is not inspect.Parameter.empty:
                report.error(where, f"{name}({param.name}=…): hook parameters must not have defaults "
                                    "(pluggy never passes a value to them)")
    try:
        pm.register(plugin, name="checked")
        pm.check_pending()
    except Exception as exc:  # pluggy.PluginValidationError: names the hook and the bad argument
        report.error(where, f"hook signatures: {exc}")
        return []
    impls = sorted(c.name for c in pm.get_hookcallers(plugin) or [])
    if not impls:
        report.error(where, "implements no firebus hook")
    else:
        report.ok(f"hooks: {', '.join(impls)}")
    return _check_declarations(report, where, pm)


#: register_* hooks whose results are classes keyed by ``type_key``
_DECLARING = ("firebus_register_drivers", "firebus_register_transports", "firebus_register_rules",
              "firebus_register_notifiers", "firebus_register_detectors")


def _check_declarations(report: CheckReport, where: str, pm: Any) -> list[type]:
    """Call the declaring hooks (with no core) and check what they return."""
    plugin_name = where.split()[2] if where.startswith("entry point ") else ""
    keys: dict[str, str] = {}
    classes: list[type] = []
    for hook in _DECLARING:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            try:
                declared = impl.function(*[None for _ in impl.argnames]) or []
            except Exception as exc:  # the hook may need a running core: only the contract suite can tell
                report.warning(where, f"{hook}(core=None) raised {type(exc).__name__}: {exc}; not checked")
                continue
            for cls in declared:
                key = getattr(cls, "type_key", None)
                if not isinstance(cls, type) or not isinstance(key, str) or not key:
                    report.error(where, f"{hook} returned {cls!r}, which has no string type_key")
                    continue
                if key in keys:
                    report.error(where, f"type_key {key!r} declared twice ({keys[key]} and {hook})")
                keys[key] = hook
                classes.append(cls)
                if plugin_name and not key.startswith(plugin_name + ".") and not key.startswith(plugin_name + "_"):
                    report.warning(where, f"type_key {key!r} is not namespaced: use '{plugin_name}.{key}' "
                                          "(keys are unique across every installed plugin)")
    if keys:
        report.ok(f"declarations: {', '.join(sorted(keys))}")
    return classes


def profile_point_classes(profile: Any) -> set[str]:
    """The point classes a Modbus register map or JSON payload map gives its points."""
    specs = getattr(profile, "point_specs", None)
    return {str(spec.point_class) for spec in specs()} if callable(specs) else set()


def _check_point_classes(report: CheckReport, where: str, what: str, classes: set[str], known: set[str]) -> None:
    """The contract suites' ``test_points_are_known_classes`` / ``…_declared_points``, before any test runs."""
    for point_class in sorted(classes - known):
        report.error(where, f"{what}: point class {point_class!r} is not a firebus.sdk.PointClass and not "
                            "declared (add it to FIREBUS_MANIFEST.point_classes and return it from "
                            "firebus_register_point_classes); the contract suite fails the same way")


def _check_manifest(report: CheckReport, where: str, plugin: Any, ep_name: str) -> None:
    manifest = getattr(plugin, "FIREBUS_MANIFEST", None)
    if manifest is None:
        report.error(where, "no FIREBUS_MANIFEST = firebus.sdk.Manifest(...) in the plugin module")
        return
    if not isinstance(manifest, Manifest):
        report.error(where, f"FIREBUS_MANIFEST is a {type(manifest).__name__}, not a firebus.sdk.Manifest")
        return
    try:
        ok = sdk_compatible(manifest.requires_sdk)
    except ValueError as exc:
        report.error(where, f"manifest requires_sdk: {exc}")
        return
    if not ok:
        report.error(where, f"manifest requires_sdk {manifest.requires_sdk!r} excludes this SDK ({API_VERSION}): "
                            "the core would refuse the plugin")
        return
    if ">" not in manifest.requires_sdk and "=" not in manifest.requires_sdk:
        report.warning(where, "manifest requires_sdk has no lower bound")
    if "<" not in manifest.requires_sdk:
        report.warning(where, f"manifest requires_sdk {manifest.requires_sdk!r} has no upper bound "
                              "(use e.g. '>=1.0,<2': a major SDK version may break the plugin)")
    if manifest.name != ep_name:
        report.warning(where, f"manifest name {manifest.name!r} differs from the entry-point name {ep_name!r} "
                              "(the core lists the plugin under the entry-point name)")
    report.ok(f"manifest: {manifest.name} requires SDK {manifest.requires_sdk} (this SDK: {API_VERSION})")


def _manifest_of(plugin: Any) -> Manifest | None:
    manifest = getattr(plugin, "FIREBUS_MANIFEST", None)
    return manifest if isinstance(manifest, Manifest) else None


def _profile_kind(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    if "topics" in data or "identity" in data:
        return "json"
    points = data.get("points")
    if isinstance(points, list) and points and isinstance(points[0], dict) and "address" in points[0]:
        return "modbus"
    return None


def check_profiles(report: CheckReport, base: Path, package_dirs: Sequence[Path],
                   known: set[str] | None = None) -> None:
    """Every shipped profile parses; with ``known``, its point classes are known ones."""
    from .. import jsonmap, modbus

    seen = 0
    for pkg in package_dirs:
        for path in sorted(pkg.rglob("*")):
            if path.suffix not in (".yaml", ".yml", ".toml") or path.name.endswith(".scenario.yaml"):
                continue
            if "profiles" not in path.relative_to(pkg).parts[:-1]:
                continue
            rel = path.relative_to(base.parent if base.name == "src" else base)
            try:
                data = parse_profile_data(path.read_text(encoding="utf-8"), path.name, str(rel), ValueError)
            except (ValueError, UnicodeDecodeError) as exc:
                report.error(str(rel), f"does not parse: {str(exc).removeprefix(f'{rel}: ')}")
                continue
            kind = _profile_kind(data)
            try:
                profile: Any
                if kind == "modbus":
                    profile = modbus.profile_from_data(data, str(rel))
                elif kind == "json":
                    profile = jsonmap.profile_from_data(data, str(rel))
                else:
                    report.warning(str(rel), "not a Modbus register map (points with address) "
                                             "nor a JSON payload map (topics, identity)")
                    continue
            except ValueError as exc:
                report.error(str(rel), str(exc).removeprefix(f"{rel}: "))
                continue
            if known is not None:
                _check_point_classes(report, str(rel), "profile", profile_point_classes(profile), known)
            seen += 1
    if seen:
        report.ok(f"profiles: {seen} parse")


def check_package_data(report: CheckReport, meta: dict[str, Any], root: Path, base: Path | None,
                       package_dirs: Sequence[Path]) -> None:
    """Profiles must ship in the wheel; setuptools leaves non-Python files out unless told."""
    import fnmatch

    backend = meta.get("build-system", {}).get("build-backend", "")
    if base is None or not backend.startswith("setuptools") or (root / "MANIFEST.in").exists():
        return
    rules: dict[str, list[str]] = meta.get("tool", {}).get("setuptools", {}).get("package-data", {})
    for pkg_dir in package_dirs:
        for path in sorted(pkg_dir.rglob("*")):
            if path.suffix not in (".yaml", ".yml", ".toml", ".json") or "profiles" not in path.parts:
                continue
            # the innermost package holding the file, and the file's path inside it
            holder = path.parent
            while holder != base and not (holder / "__init__.py").exists():
                holder = holder.parent
            package = ".".join(holder.relative_to(base).parts)
            inner = path.relative_to(holder).as_posix()
            candidates = [(k, pat) for k, pats in rules.items() for pat in pats]
            shipped = any(
                (key == "*" or key == package) and fnmatch.fnmatch(inner, pat)
                or package.startswith(key + ".") and fnmatch.fnmatch(
                    f"{package[len(key) + 1:].replace('.', '/')}/{inner}", pat)
                for key, pat in candidates
            )
            if not shipped:
                rel = path.relative_to(root)
                report.error(str(rel), f"not in the wheel: add [tool.setuptools.package-data] "
                                       f'"{package}" = ["*{path.suffix}"] to pyproject.toml')


def check_tests(report: CheckReport, root: Path) -> None:
    tests = [p for p in (root / "tests").rglob("test_*.py")] if (root / "tests").is_dir() else []
    count = 0
    contract = False
    for path in tests:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except SyntaxError as exc:
            report.error(str(path.relative_to(root)), f"syntax error: {exc}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                count += 1
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if any(b.endswith("Contract") for b in bases):
                    contract, count = True, count + 1
    if not count:
        report.error("tests/", "no tests (tests/test_*.py with test functions or a contract suite)")
        return
    if not contract:
        report.warning("tests/", "no contract suite (firebus.sdk.testing.contracts): the quality level is unknown")
    report.ok(f"tests: {len(tests)} file(s){', contract suite' if contract else ''}")


def check_package(path: str | Path = ".") -> CheckReport:
    # The contract suites' own rule for point classes, so that `check` fails where their
    # test_points_are_known_classes would (from testing.checks, which needs no pytest).
    from ..testing.checks import known_point_classes

    root = Path(path).resolve()
    report = CheckReport(root)
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        report.error(str(root), "no pyproject.toml: is this a plugin package?")
        return report
    try:
        meta = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        report.error("pyproject.toml", f"does not parse: {exc}")
        return report
    project = meta.get("project", {})
    name = project.get("name", "")
    if not name:
        report.error("pyproject.toml", "[project] name is missing")

    # Pins: one environment holds the core and every plugin; an exact pin on a shared
    # package makes two plugins (or a core upgrade) impossible to install together.
    shared = core_requirements()
    for req in project.get("dependencies", []):
        pin = exact_pin(req)
        if pin and pin[0] in shared:
            report.error("pyproject.toml", f"dependency {req!r} pins {pin[0]} exactly ({pin[1]}); the core "
                                           "depends on it too — use a range such as '>=X.Y,<X+1'")
    if not any(_norm(m.group(1)) == "firebus" for r in project.get("dependencies", [])
               if (m := _REQ_RE.match(r)) is not None):
        report.warning("pyproject.toml", "no dependency on firebus (add e.g. 'firebus>=0.1')")

    eps = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    if not eps:
        report.error("pyproject.toml", f'no [project.entry-points."{ENTRY_POINT_GROUP}"] entry: '
                                       "the core will never find the plugin")
    package_dirs: list[Path] = []
    base_seen: Path | None = None
    known: set[str] | None = None  # point classes the plugins may use (None: no plugin imported)
    for ep_name, target in eps.items():
        where = f'entry point {ep_name} = "{target}"'
        module, _, attr = str(target).partition(":")
        if not NAME_RE.match(ep_name):
            report.error(where, "plugin names are lowercase letters, digits and _ (2-31 characters)")
        base = _module_root(root, module)
        if base is None:
            report.error(where, f"module {module!r} not found under {root} or {root / 'src'}")
            continue
        base_seen = base
        top = module.split(".")[0]
        if (base / top).is_dir():
            package_dirs.append(base / top)
        try:
            plugin = _import_fresh(base, module)
            if attr:
                for part in attr.split("."):
                    plugin = getattr(plugin, part)
        except Exception as exc:
            report.error(where, f"import failed: {type(exc).__name__}: {exc}")
            continue
        report.ok(f"entry point {ep_name} -> {target}")
        _check_manifest(report, where, plugin, ep_name)
        classes = _check_hooks(report, where, plugin)
        try:
            plugin_known = known_point_classes(manifest=_manifest_of(plugin), plugin=plugin)
        except Exception as exc:  # firebus_register_point_classes(core=None) raised
            report.error(where, f"firebus_register_point_classes raised {type(exc).__name__}: {exc}")
            continue
        known = (known or set()) | plugin_known
        for cls in classes:
            profile = getattr(cls, "profile", None)
            if profile is not None:
                _check_point_classes(report, where, f"{getattr(cls, 'type_key', cls.__name__)}",
                                     profile_point_classes(profile), plugin_known)
    check_profiles(report, base_seen or root, package_dirs, known)
    check_package_data(report, meta, root, base_seen, package_dirs)
    check_tests(report, root)
    return report


def print_report(report: CheckReport, out: Any = None) -> int:
    out = out or sys.stdout
    for line in report.passed:
        print(f"ok: {line}", file=out)
    for problem in report.problems:
        print(problem, file=out)
    errors, warnings = len(report.errors), len(report.problems) - len(report.errors)
    verdict = "FAILED" if errors else "passed"
    print(f"firebus sdk check {verdict}: {report.root} ({errors} error(s), {warnings} warning(s))", file=out)
    return 1 if errors else 0


def run_tests(report: CheckReport, timeout: float = 600) -> None:
    """Run the package's own tests (its contract suites included) against this firebus, with the
    package importable from its folder as it would be once installed."""
    import os
    import subprocess

    root = report.root
    src = root / "src" if (root / "src").is_dir() else root
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                              cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        report.error("tests/", f"the plugin's tests did not finish within {timeout:.0f} s")
        return
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        for line in failed[:10]:
            report.error("tests/", line)
        report.error("tests/", f"the plugin's tests fail: {summary}")
    else:
        report.ok(f"tests pass: {summary}")
