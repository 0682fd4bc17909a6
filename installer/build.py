"""Builds Daybook's installers, one command per platform, run from the project's virtualenv:

    python installer/build.py linux      # dist/daybook/ (PyInstaller) and dist/daybook_<v>_<arch>.deb
    python installer/build.py windows    # dist/daybook/ and dist/Daybook-<v>-setup.exe (Inno Setup)
    python installer/build.py macos      # dist/Daybook.app and dist/Daybook-<v>.dmg

Each builds on its own platform only (PyInstaller does not cross-compile). `make package` runs
the Linux one with PyInstaller installed. The Windows and macOS steps are written from the tools'
documentation and have not been run (README, "Installers").

The .deb installs the bundle to /opt/daybook with /usr/bin/daybook, a desktop entry and hicolor
icons. Its Depends are derived, not guessed: the system libraries the bundle's ELF files link
against (ldd), and those it loads at run time with dlopen (PortAudio, espeak-ng, Qt's xcb
plugin's), read from /proc/<pid>/maps while the bundle runs its own --self-test offscreen;
each mapped to its package with `dpkg -S`. Removing the package leaves the user's data
(~/.local/share/daybook) alone: it is never installed, only created by the app.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
BUILD = ROOT / "build" / "installer"
SPEC = ROOT / "installer" / "daybook.spec"
sys.path.insert(0, str(ROOT))

from app import __version__ as VERSION  # noqa: E402
from app.resources import DESKTOP_ENTRY, ICON  # noqa: E402

MAINTAINER = "Daybook developers <daybook@localhost>"
DESCRIPTION = """\
Local, private desktop assistant that remembers your day
 Daybook watches the webcam and listens to the microphone, keeps a searchable memory of
 the day on this computer, and answers spoken or typed questions about it out loud. It runs
 on the CPU and works without downloading any model. Removing the package leaves your
 memory (~/.local/share/daybook) in place."""
ICON_SIZES = (48, 64, 128, 256)


def log(message: str) -> None:
    print(f"build: {message}", flush=True)


def du_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())


def bundle(icon: Path | None = None) -> Path:
    """PyInstaller's one-folder bundle, dist/daybook (dist/Daybook.app too on macOS); `icon`:
    the executable's (Windows .ico) or the app's (macOS .icns)."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        sys.exit("build: PyInstaller is not installed: pip install -e '.[package]'")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
                    "--log-level", "WARN", "--distpath", str(DIST),
                    "--workpath", str(BUILD / "pyinstaller"), str(SPEC)], check=True, cwd=ROOT,
                   env={**os.environ, "DAYBOOK_ICON": str(icon or "")})
    out = DIST / "daybook"
    exe = out / ("daybook.exe" if sys.platform == "win32" else "daybook")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                             timeout=120)
    if version.returncode != 0 or VERSION not in version.stdout:
        sys.exit(f"build: the bundle does not start: {version.stdout}{version.stderr}")
    log(f"bundle {out} ({du_bytes(out) / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s")
    return out


# --- Linux: the .deb ------------------------------------------------------------------------


def _elf_files(root: Path) -> list[Path]:
    out = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            with p.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    out.append(p)
    return out


def dynamic_section(elf: Path) -> tuple[str, set[str]]:
    """An ELF file's SONAME ("" if none) and the sonames it NEEDs (readelf -d)."""
    r = subprocess.run(["readelf", "-d", "--wide", str(elf)], capture_output=True, text=True)
    soname, needed = "", set()
    for line in r.stdout.splitlines():
        if "(NEEDED)" in line or "(SONAME)" in line:
            value = line.rsplit("[", 1)[-1].rstrip("]")
            if "(SONAME)" in line:
                soname = value
            else:
                needed.add(value)
    return soname, needed


def linked_libraries(root: Path) -> tuple[set[str], set[str]]:
    """System libraries the bundle's ELF files link against directly (their NEEDED entries,
    found where ldd finds them), and every soname they need. A library found nowhere is an
    error."""
    found: set[str] = set()
    all_needed: set[str] = set()
    missing: set[str] = set()
    inside = str(root.resolve())
    for elf in _elf_files(root):
        _, needed = dynamic_section(elf)
        all_needed |= needed
        r = subprocess.run(["ldd", str(elf)], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            name, _, where = line.strip().partition(" => ")
            path = where.split(" (")[0].strip()
            if where.startswith("not found"):
                missing.add(f"{name} (for {elf.relative_to(root)})")
            elif (name in needed and path.startswith("/")
                  and not os.path.realpath(path).startswith(inside)):
                found.add(path)
    # Libraries the bundle carries itself are found by their $ORIGIN rpath at run time, but
    # ldd run on a library alone does not know it: only what the bundle lacks counts.
    carried = {p.name for p in root.rglob("*.so*")}
    missing = {m for m in missing if m.split(" ")[0] not in carried}
    if missing:
        sys.exit("build: libraries not found for the bundle: " + ", ".join(sorted(missing)))
    return found, all_needed


def loaded_roots(loaded: set[str], needed: set[str]) -> set[str]:
    """Of the system libraries the running bundle mapped, those it loaded itself (dlopen: ALSA's
    plug-ins, espeak-ng): the ones no bundled or mapped library needs. The rest come with
    them, through their own packages' dependencies."""
    sections = {path: dynamic_section(Path(path)) for path in loaded}
    for _, libs in sections.values():
        needed = needed | libs
    return {path for path, (soname, _) in sections.items()
            if (soname or Path(path).name) not in needed}


def loaded_libraries(root: Path, timeout_s: float = 150.0) -> tuple[set[str], dict]:
    """System libraries the running bundle maps (dlopen'd ones too), from its own self-test
    run offscreen; and the self-test's result."""
    import psutil

    exe = root / "daybook"
    seen: set[str] = set()
    inside = str(root.resolve())
    with tempfile.TemporaryDirectory(prefix="daybook-selftest-") as tmp:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
               "DAYBOOK_CONFIG": str(Path(tmp) / "none.toml")}
        proc = subprocess.Popen([str(exe), "--self-test", "--data-dir", str(Path(tmp) / "data")],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                try:
                    procs = [psutil.Process(proc.pid)]
                    procs += procs[0].children(recursive=True)
                except psutil.Error:
                    continue
                for p in procs:
                    try:
                        maps = Path(f"/proc/{p.pid}/maps").read_text()
                    except OSError:
                        continue
                    for line in maps.splitlines():
                        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
                        if ".so" in path and path.startswith("/") and not path.startswith(inside):
                            seen.add(path)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            out, err = proc.communicate(timeout=timeout_s)
        finally:
            done.set()
            if proc.poll() is None:
                proc.kill()
        sampler.join()
    lines = [x for x in out.splitlines() if x.startswith("{")]
    result = json.loads(lines[-1]) if lines else {"self_test": "no result", "stderr": err[-2000:]}
    if proc.returncode != 0:
        sys.exit(f"build: the bundle's self-test failed ({proc.returncode}): {result}\n{err[-3000:]}")
    return seen, result


def packages_of(paths: set[str]) -> dict[str, str]:
    """The Debian package of each file (dpkg -S), with its installed version."""
    owners: dict[str, str] = {}
    unowned: list[str] = []
    for path in sorted(paths):
        real = os.path.realpath(path)
        candidates = [path, real]
        for p in (path, real):  # merged /usr: dpkg may know it under the other name
            candidates.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
        for candidate in candidates:
            r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if r.returncode == 0:
                package = r.stdout.split(":")[0].split(",")[0].strip()
                owners[package] = ""
                break
        else:
            unowned.append(path)
    if unowned:
        log("not from a package (left out of Depends): " + ", ".join(unowned))
    for package in owners:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                           capture_output=True, text=True, check=True)
        owners[package] = r.stdout.strip()
    return owners


def depends_line(owners: dict[str, str]) -> str:
    """Debian's Depends: each package at least the version built against (its Debian revision
    dropped)."""
    parts = []
    for package, version in sorted(owners.items()):
        upstream = version.rsplit("-", 1)[0] if "-" in version else version
        parts.append(f"{package} (>= {upstream})")
    return ", ".join(parts)


def render_icons(dest: Path, sizes: tuple[int, ...] = ICON_SIZES,
                 pattern: str = "{size}x{size}/apps/daybook.png") -> list[Path]:
    """The SVG icon rendered at `sizes` (Qt's SVG renderer), to dest/pattern."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(ICON))
    written = []
    for size in sizes:
        image = QImage(QSize(size, size), QImage.Format.Format_ARGB32)
        image.fill(0)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        out = dest / pattern.format(size=size)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out)):
            sys.exit(f"build: cannot write {out}")
        written.append(out)
    return written


MAINTAINER_SCRIPT = """#!/bin/sh
set -e
# The menu and the icon theme learn about Daybook (or forget it); the user's data is never
# touched here.
if command -v update-desktop-database >/dev/null 2>&1; then
  update-desktop-database -q /usr/share/applications || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
  gtk-update-icon-cache -q -t -f /usr/share/icons/hicolor || true
fi
exit 0
"""


def make_deb(bundle_dir: Path) -> tuple[Path, dict]:
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    stage = BUILD / "deb"
    shutil.rmtree(stage, ignore_errors=True)
    opt = stage / "opt" / "daybook"
    shutil.copytree(bundle_dir, opt, symlinks=True)
    (stage / "usr" / "bin").mkdir(parents=True)
    (stage / "usr" / "bin" / "daybook").symlink_to("/opt/daybook/daybook")
    apps = stage / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy(DESKTOP_ENTRY, apps / "daybook.desktop")
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        sys.exit("build: desktop-file-validate is missing (apt install desktop-file-utils)")
    r = subprocess.run([validate, str(apps / "daybook.desktop")], capture_output=True, text=True)
    if r.returncode != 0 or r.stdout.strip():
        sys.exit(f"build: the desktop entry does not validate: {r.stdout}{r.stderr}")
    icons = stage / "usr" / "share" / "icons" / "hicolor"
    (icons / "scalable" / "apps").mkdir(parents=True)
    shutil.copy(ICON, icons / "scalable" / "apps" / "daybook.svg")
    render_icons(icons)
    docs = stage / "usr" / "share" / "doc" / "daybook"
    docs.mkdir(parents=True)
    shutil.copy(ROOT / "README.md", docs / "README.md")
    shutil.copy(ROOT / "LICENSE", docs / "copyright")

    log("deriving Depends: ldd over the bundle, then its self-test's mapped libraries")
    linked, needed = linked_libraries(bundle_dir)
    loaded, self_test = loaded_libraries(bundle_dir)
    owners = packages_of(linked | loaded_roots(loaded, needed))
    owners.pop("daybook", None)

    control = stage / "DEBIAN"
    control.mkdir()
    installed_kb = du_bytes(stage) // 1024
    (control / "control").write_text(
        f"Package: daybook\nVersion: {VERSION}\nArchitecture: {arch}\n"
        f"Maintainer: {MAINTAINER}\nInstalled-Size: {installed_kb}\n"
        f"Depends: {depends_line(owners)}\n"
        "Section: utils\nPriority: optional\nHomepage: https://github.com/daybook\n"
        f"Description: {DESCRIPTION}\n")
    for name in ("postinst", "postrm"):
        script = control / name
        script.write_text(MAINTAINER_SCRIPT)
        script.chmod(0o755)
    deb = DIST / f"daybook_{VERSION}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(stage), str(deb)],
                   check=True, stdout=subprocess.DEVNULL)
    info = {"deb": str(deb), "deb_bytes": deb.stat().st_size, "installed_kb": installed_kb,
            "depends": sorted(owners), "self_test": self_test}
    log(f"{deb.name}: {deb.stat().st_size / 1e6:.0f} MB, {installed_kb / 1024:.0f} MB "
        f"installed; Depends: {', '.join(sorted(owners))}")
    return deb, info


def linux(args: argparse.Namespace) -> dict:
    if not sys.platform.startswith("linux"):
        sys.exit("build: the Linux bundle and .deb are built on Linux")
    if shutil.which("dpkg-deb") is None:
        sys.exit("build: dpkg-deb is missing (a Debian or Ubuntu system builds the .deb)")
    out = DIST / "daybook"
    if not (args.reuse_bundle and (out / "daybook").exists()):
        out = bundle()
    _, info = make_deb(out)
    info["bundle_bytes"] = du_bytes(out)
    log("no AppImage: appimagetool and its runtime come from GitHub releases, not from the "
        "package registries this build may use")
    return info


# --- Windows and macOS (written from the tools' documentation; not run here) ------------------


def windows(args: argparse.Namespace) -> dict:
    if sys.platform != "win32":
        sys.exit("build: the Windows installer is built on Windows")
    ico = BUILD / "daybook.ico"
    png = render_icons(BUILD, (256,), "daybook-{size}.png")[0]
    from PySide6.QtGui import QImage

    if not QImage(str(png)).save(str(ico), "ICO"):  # Qt's ico plug-in
        sys.exit(f"build: cannot write {ico}")
    out = bundle(ico)
    iscc = shutil.which("iscc") or r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe"
    if not Path(iscc).exists():
        sys.exit("build: Inno Setup 6 is missing (https://jrsoftware.org/isinfo.php, or "
                 "`winget install JRSoftware.InnoSetup`)")
    subprocess.run([iscc, f"/DAppVersion={VERSION}", f"/DBundleDir={out}", f"/DIcon={ico}",
                    f"/DOutputDir={DIST}", str(ROOT / "installer" / "windows" / "daybook.iss")],
                   check=True)
    setup = DIST / f"Daybook-{VERSION}-setup.exe"
    return {"installer": str(setup), "bundle_bytes": du_bytes(out)}


def macos(args: argparse.Namespace) -> dict:
    if sys.platform != "darwin":
        sys.exit("build: the macOS app and disk image are built on macOS")
    iconset = BUILD / "daybook.iconset"  # iconutil's layout: icon_<n>x<n>[@2x].png
    shutil.rmtree(iconset, ignore_errors=True)
    for size in (16, 32, 128, 256, 512):
        render_icons(iconset, (size,), "icon_{size}x{size}.png")
        render_icons(iconset, (size * 2,), f"icon_{size}x{size}@2x.png")
    icns = BUILD / "daybook.icns"
    subprocess.run(["iconutil", "-c", "icns", str(iconset), "-o", str(icns)], check=True)
    bundle(icns)
    app = DIST / "Daybook.app"
    dmg = DIST / f"Daybook-{VERSION}.dmg"
    dmg.unlink(missing_ok=True)
    subprocess.run(["bash", str(ROOT / "installer" / "macos" / "make_dmg.sh"), str(app),
                    str(dmg)], check=True)
    return {"app": str(app), "dmg": str(dmg), "app_bytes": du_bytes(app)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("platform", choices=["linux", "windows", "macos"])
    parser.add_argument("--reuse-bundle", action="store_true",
                        help="linux: package dist/daybook as it is, without building it again")
    parser.add_argument("--json", metavar="PATH", help="write what was built there")
    args = parser.parse_args()
    DIST.mkdir(exist_ok=True)
    info = {"linux": linux, "windows": windows, "macos": macos}[args.platform](args)
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=2))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
