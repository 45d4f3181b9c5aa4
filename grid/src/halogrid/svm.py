"""Software vulnerability scans (svm): the offline feed and the matching of packages.

An operator imports a vulnerability feed in OSV format (``halogrid feed import``): Debian,
Ubuntu and the RPM distributions (AlmaLinux, Rocky Linux, Red Hat, SUSE, ...) publish their
advisories in it. An svm scan's agent reports the installed packages (name, version,
architecture, and for dpkg the source package); the grid matches them against the feed's
ranges with the package manager's own version order (versioncmp.py) and stores one finding
per package in Halo's shape: vulnerable ones ``bad`` with their CVEs, the others ``good``.

What "critical" means (Halo's API does not say; see API.md): a vulnerable package is critical
when one of its advisories is rated high or above (a CVSS base score of 7.0 or more, or the
feed's own word: critical, high, important), or carries no rating at all (a Debian DSA has
none): an unrated advisory counts as critical so that admission fails closed.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from functools import cmp_to_key
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from .models import SvmFinding, VulnAdvisory, VulnPackage, scan_outcome, utcnow
from .versioncmp import DPKG_ECOSYSTEMS, RPM_ECOSYSTEMS, Compare, comparator

KNOWN_ECOSYSTEMS = DPKG_ECOSYSTEMS | RPM_ECOSYSTEMS
CRITICAL_CVSS = 7.0
HIGH_WORDS = frozenset(("critical", "high", "important"))
LOW_WORDS = frozenset(("low", "medium", "moderate", "unimportant", "negligible", "none"))

# What one svm result may hold (PROTOCOL.md): more is refused with 413, nothing stored.
MAX_PACKAGES = 50000
PACKAGE_FIELDS = {"name": 255, "version": 255, "architecture": 64, "source": 255,
                  "source_version": 255}


# -- the feed -----------------------------------------------------------------------------
def split_ecosystem(text: str) -> Tuple[str, str]:
    """``"Debian:12"`` -> ``("Debian", "12")``; ``"Red Hat:enterprise_linux:9::baseos"`` ->
    ``("Red Hat", "enterprise_linux:9::baseos")``; no release: ``""`` (any release)."""
    base, _, release = text.partition(":")
    return base.strip(), release.strip()


def _clean(text: Any, limit: int) -> Optional[str]:
    if text is None:
        return None
    value = str(text).replace("\x00", "")
    return value[:limit]


def cvss_of(severity: Any) -> Tuple[Optional[float], Optional[str], Optional[str]]:
    """(highest base score, its vector, a textual rating) of an OSV ``severity`` list."""
    from cvss import CVSS2, CVSS3, CVSS4

    best: Tuple[Optional[float], Optional[str]] = (None, None)
    word = None
    for item in severity if isinstance(severity, list) else []:
        if not isinstance(item, dict):
            continue
        kind, score = str(item.get("type") or ""), str(item.get("score") or "")
        value: Optional[float] = None
        try:
            if kind == "CVSS_V3":
                value = float(CVSS3(score).base_score)
            elif kind == "CVSS_V4":
                value = float(CVSS4(score).base_score)
            elif kind == "CVSS_V2":
                value = float(CVSS2(score).base_score)
            else:  # "Ubuntu": low, medium, high, ...; a bare number from some feeds
                try:
                    value = float(score)
                except ValueError:
                    word = word or score.lower() or None
        except Exception:  # a vector the library cannot read: no score from it
            value = None
        if value is not None and (best[0] is None or value > best[0]):
            best = (value, score if kind.startswith("CVSS") else None)
    return best[0], best[1], word


def _cves(record: Dict[str, Any]) -> List[str]:
    out: List[str] = []
    for field in ("aliases", "upstream", "related"):
        for name in record.get(field) or []:
            name = str(name)
            if name.startswith("CVE-") and name not in out:
                out.append(name)
    if str(record.get("id", "")).startswith("CVE-") and record["id"] not in out:
        out.insert(0, record["id"])
    return out


def _advisory_url(record: Dict[str, Any]) -> Optional[str]:
    refs = [r for r in record.get("references") or [] if isinstance(r, dict) and r.get("url")]
    for ref in refs:
        if ref.get("type") == "ADVISORY":
            return str(ref["url"])
    return str(refs[0]["url"]) if refs else None


def parse_record(record: Any) -> Optional[Tuple[Dict[str, Any], List[Dict[str, Any]]]]:
    """(advisory row, package rows) of one OSV record, or None when it names no package
    of a system ecosystem (or is withdrawn)."""
    if not isinstance(record, dict) or not record.get("id") or record.get("withdrawn"):
        return None
    ident = _clean(record["id"], 128)
    packages = []
    for affected in record.get("affected") or []:
        if not isinstance(affected, dict):
            continue
        package = affected.get("package") or {}
        ecosystem, release = split_ecosystem(str(package.get("ecosystem") or ""))
        name = package.get("name")
        if ecosystem not in KNOWN_ECOSYSTEMS or not name:
            continue
        ranges = [[e for e in (r.get("events") or []) if isinstance(e, dict)]
                  for r in affected.get("ranges") or []
                  if isinstance(r, dict) and r.get("type") == "ECOSYSTEM"]
        versions = [str(v) for v in affected.get("versions") or []]
        specific = affected.get("ecosystem_specific") or {}
        specific = specific if isinstance(specific, dict) else {}
        word = specific.get("severity") or specific.get("urgency")
        packages.append({"advisory_id": ident, "ecosystem": ecosystem,
                         "release": _clean(release, 128), "package": _clean(name, 255),
                         "ranges": ranges, "versions": versions,
                         "severity": _clean(str(word).lower(), 32) if word else None})
    if not packages:
        return None
    score, vector, word = cvss_of(record.get("severity"))
    specific = record.get("database_specific") or {}
    if not word and isinstance(specific, dict) and specific.get("severity"):
        word = str(specific["severity"]).lower()
    advisory = {"id": ident, "modified": _clean(record.get("modified"), 64),
                "summary": _clean(record.get("summary") or record.get("details"), 4096),
                "cves": _cves(record), "cvss_score": score, "cvss_vector": _clean(vector, 255),
                "severity": _clean(word, 32), "url": _clean(_advisory_url(record), 2048)}
    return advisory, packages


def read_records(path: str) -> Iterator[Any]:
    """The OSV records of a file (one record, a list, or an OSV API answer ``{"vulns"}``),
    a .zip of record files (as the ecosystems publish them: ``all.zip``) or a directory."""
    if os.path.isdir(path):
        for folder, _dirs, files in sorted(os.walk(path)):
            for name in sorted(files):
                if name.endswith((".json", ".zip")):
                    yield from read_records(os.path.join(folder, name))
        return
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith(".json"):
                    with archive.open(member) as handle:
                        yield from _records_of(json.load(io.TextIOWrapper(handle, "utf-8")))
        return
    with open(path, encoding="utf-8") as handle:
        yield from _records_of(json.load(handle))


def _records_of(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        yield from data
    elif isinstance(data, dict) and isinstance(data.get("vulns"), list):
        yield from data["vulns"]
    else:
        yield data


def import_feed(db: Session, records: Iterable[Any]) -> Dict[str, Any]:
    """Store the records, each replacing any earlier copy of the same advisory; a withdrawn
    record removes its advisory. Counts of what happened, per ecosystem."""
    stats: Dict[str, Any] = {"advisories": 0, "packages": 0, "withdrawn": 0, "skipped": 0,
                             "ecosystems": {}}
    batch: List[Tuple[Dict[str, Any], List[Dict[str, Any]]]] = []

    def flush() -> None:
        ids = [a["id"] for a, _ in batch]
        db.execute(delete(VulnPackage).where(VulnPackage.advisory_id.in_(ids)))
        db.execute(delete(VulnAdvisory).where(VulnAdvisory.id.in_(ids)))
        now = utcnow()
        db.execute(insert(VulnAdvisory), [dict(a, imported_at=now) for a, _ in batch])
        db.execute(insert(VulnPackage), [p for _, rows in batch for p in rows])
        batch.clear()

    seen: Dict[str, int] = {}
    for record in records:
        parsed = parse_record(record)
        if parsed is None:
            if isinstance(record, dict) and record.get("withdrawn") and record.get("id"):
                db.execute(delete(VulnPackage).where(VulnPackage.advisory_id == record["id"]))
                db.execute(delete(VulnAdvisory).where(VulnAdvisory.id == record["id"]))
                stats["withdrawn"] += 1
            else:
                stats["skipped"] += 1
            continue
        advisory, rows = parsed
        if advisory["id"] in seen:  # the same advisory twice in one import: the last wins
            flush()
        seen[advisory["id"]] = 1
        batch.append(parsed)
        stats["advisories"] += 1
        stats["packages"] += len(rows)
        for row in rows:
            key = row["ecosystem"] + (":" + row["release"] if row["release"] else "")
            stats["ecosystems"][key] = stats["ecosystems"].get(key, 0) + 1
        if len(batch) >= 500:
            flush()
            seen.clear()
    if batch:
        flush()
    return stats


def feed_status(db: Session) -> Dict[str, Any]:
    rows = db.execute(select(VulnPackage.ecosystem, VulnPackage.release, func.count())
                      .group_by(VulnPackage.ecosystem, VulnPackage.release)).all()
    return {"advisories": db.scalar(select(func.count()).select_from(VulnAdvisory)) or 0,
            "ecosystems": {("%s:%s" % (e, r) if r else e): n for e, r, n in sorted(rows)}}


# -- the host -----------------------------------------------------------------------------
def _major(version: str) -> str:
    return version.split(".")[0] if version else ""


def host_ecosystems(os_id: str, version_id: str) -> List[Tuple[str, str]]:
    """(OSV ecosystem, release prefix) pairs whose advisories apply to a system with this
    os-release ID and VERSION_ID."""
    os_id, version_id = (os_id or "").lower().strip('"'), (version_id or "").strip('"')
    if os_id == "debian":
        return [("Debian", _major(version_id))]
    if os_id == "ubuntu":
        return [("Ubuntu", version_id)]
    if os_id == "rocky":
        return [("Rocky Linux", _major(version_id))]
    if os_id == "almalinux":
        return [("AlmaLinux", _major(version_id))]
    if os_id in ("rhel", "centos"):
        return [("Red Hat", "enterprise_linux:%s" % _major(version_id))]
    if os_id == "opensuse-leap":
        return [("openSUSE", "Leap %s" % version_id)]
    if os_id in ("sles", "sled"):
        major, _, sp = version_id.partition(".")
        return [("SUSE", "Linux Enterprise Server %s%s" % (major, " SP%s" % sp if sp else ""))]
    if os_id == "mageia":
        return [("Mageia", version_id)]
    return []


def release_applies(feed_release: str, host_release: str) -> bool:
    """A feed row for release ``12`` applies to a Debian 12 host; ``22.04:LTS`` to Ubuntu
    22.04; ``enterprise_linux:9::baseos`` to RHEL 9; a row with no release to every host."""
    if not feed_release:
        return True
    return feed_release == host_release or feed_release.startswith(host_release + ":")


# -- matching -----------------------------------------------------------------------------
def _event(event: Dict[str, Any]) -> Tuple[str, str]:
    for kind in ("introduced", "fixed", "last_affected", "limit"):
        if kind in event:
            return kind, str(event[kind])
    return "", ""


def in_range(version: str, events: List[Dict[str, Any]], compare: Compare
             ) -> Tuple[bool, Optional[str]]:
    """(affected, the fix after it) of one OSV ECOSYSTEM range, as OSV evaluates it: the
    events in version order, each at or below the installed version applies."""
    evs = [_event(e) for e in events]
    evs = [(k, v) for k, v in evs if k]

    def order(a: Tuple[str, str], b: Tuple[str, str]) -> int:
        if a[0] == "introduced" and a[1] == "0":
            return -1 if not (b[0] == "introduced" and b[1] == "0") else 0
        if b[0] == "introduced" and b[1] == "0":
            return 1
        return compare(a[1], b[1])

    affected, fixed = False, None
    for kind, value in sorted(evs, key=cmp_to_key(order)):
        if kind == "introduced":
            if value == "0" or compare(version, value) >= 0:
                affected = True
            else:
                break
        elif kind == "fixed":
            if compare(version, value) >= 0:
                affected = False
            else:
                fixed = value if affected else None
                break
        elif kind == "last_affected":
            if compare(version, value) > 0:
                affected = False
            else:
                break
        elif kind == "limit" and compare(version, value) >= 0:
            affected = False
            break
    return affected, fixed if affected else None


def affects(version: str, ranges: List[List[Dict[str, Any]]], versions: List[str],
            compare: Compare) -> Tuple[bool, Optional[str]]:
    """Whether a package row of the feed affects ``version``, and the fixed version."""
    if version in versions:
        hit, fixed = True, None
        for events in ranges:  # a range may still name the fix
            in_it, fix = in_range(version, events, compare)
            fixed = fixed or (fix if in_it else None)
        return hit, fixed
    for events in ranges:
        hit, fixed = in_range(version, events, compare)
        if hit:
            return True, fixed
    return False, None


def _critical(advisory: Dict[str, Any]) -> bool:
    score, word = advisory.get("cvss_score"), advisory.get("severity")
    if score is not None and score >= CRITICAL_CVSS:
        return True
    if word in HIGH_WORDS:
        return True
    # rated below high by a score or a word: not critical; unrated: critical (fail closed)
    return not (score is not None or word in LOW_WORDS)


def validate_packages(raw: Any) -> List[Dict[str, Optional[str]]]:
    """The ``scan.packages`` of an svm result; ValueError (400) or OverflowError (413)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("scan.packages must be a list")
    if len(raw) > MAX_PACKAGES:
        raise OverflowError("scan.packages has %d packages (at most %d)" % (len(raw), MAX_PACKAGES))
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError("scan.packages[%d] must be an object" % i)
        pkg: Dict[str, Optional[str]] = {}
        for field, limit in PACKAGE_FIELDS.items():
            value = item.get(field)
            if value is not None and not isinstance(value, str):
                raise ValueError("scan.packages[%d].%s must be a string" % (i, field))
            if value is not None and len(value) > limit:
                raise ValueError("scan.packages[%d].%s must be at most %d characters"
                                 % (i, field, limit))
            pkg[field] = value or None
        if not pkg["name"]:
            raise ValueError("scan.packages[%d].name is required" % i)
        pkg["version"] = pkg["version"] or ""
        out.append(pkg)
    return out


def match(db: Session, ecosystems: List[Tuple[str, str]], packages: List[Dict[str, Any]]
          ) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """(why the scan cannot judge, or None; one finding row per package)."""
    if not ecosystems:
        return "no vulnerability feed applies to this system's OS", []
    bases = sorted({e for e, _ in ecosystems})
    known = db.execute(select(VulnPackage.ecosystem, VulnPackage.release)
                       .where(VulnPackage.ecosystem.in_(bases)).distinct()).all()
    if not any(release_applies(r, h) for e, r in known for he, h in ecosystems if e == he):
        wanted = ", ".join("%s %s" % pair for pair in ecosystems)
        return ("the grid has no vulnerability feed for %s: import one with "
                "`halogrid feed import`" % wanted), []
    names = sorted({p["name"] for p in packages} | {p["source"] for p in packages if p["source"]})
    rows: Dict[str, List[VulnPackage]] = {}
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        for row in db.scalars(select(VulnPackage).where(VulnPackage.ecosystem.in_(bases),
                                                        VulnPackage.package.in_(chunk))):
            if any(row.ecosystem == e and release_applies(row.release, h) for e, h in ecosystems):
                rows.setdefault(row.package, []).append(row)
    advisory_ids = sorted({r.advisory_id for rs in rows.values() for r in rs})
    advisories = {}
    for start in range(0, len(advisory_ids), 500):
        for a in db.scalars(select(VulnAdvisory).where(
                VulnAdvisory.id.in_(advisory_ids[start:start + 500]))):
            advisories[a.id] = a
    findings = []
    for pkg in packages:
        findings.append(_finding(pkg, rows, advisories))
    return None, findings


def _finding(pkg: Dict[str, Any], rows: Dict[str, List[VulnPackage]],
             advisories: Dict[str, VulnAdvisory]) -> Dict[str, Any]:
    name, version = pkg["name"], pkg["version"]
    # Debian's advisories name the source package, and its version is the source version
    # (a binNMU's +b1 is not in it); the rpm ecosystems name binary packages.
    candidates = []
    if pkg.get("source") and pkg["source"] != name:
        candidates.append((pkg["source"], pkg.get("source_version") or version, True))
    candidates.append((name, version, False))
    hits: Dict[str, Dict[str, Any]] = {}
    for lookup, lookup_version, is_source in candidates:
        for row in rows.get(lookup, []):
            if row.advisory_id in hits or (is_source and row.ecosystem not in DPKG_ECOSYSTEMS):
                continue
            if is_source is False and row.ecosystem in DPKG_ECOSYSTEMS and pkg.get("source") \
                    and pkg["source"] != name:
                continue  # a Debian binary package is matched through its source only
            try:
                hit, fixed = affects(lookup_version, row.ranges or [], row.versions or [],
                                     comparator(row.ecosystem))
            except (ValueError, KeyError):
                continue  # a version the package manager's order cannot read: no claim
            if not hit:
                continue
            adv = advisories.get(row.advisory_id)
            entry = {"id": row.advisory_id, "summary": adv.summary if adv else None,
                     "url": adv.url if adv else None, "fixed_version": fixed,
                     "cves": list(adv.cves or []) if adv else [],
                     "cvss_score": adv.cvss_score if adv else None,
                     "cvss_vector": adv.cvss_vector if adv else None,
                     "severity": (adv.severity if adv and adv.severity else row.severity)}
            entry["critical"] = _critical(entry)
            hits[row.advisory_id] = entry
    matched = sorted(hits.values(), key=lambda a: a["id"])
    scores = [a["cvss_score"] for a in matched if a["cvss_score"] is not None]
    fixes = [a["fixed_version"] for a in matched if a["fixed_version"]]
    fixed_version = None
    if fixes:
        compare = comparator(next(r.ecosystem for rs in rows.values() for r in rs))
        fixed_version = sorted(fixes, key=cmp_to_key(compare))[-1]
    return {"package_name": name, "package_version": version,
            "architecture": pkg.get("architecture"), "source_package": pkg.get("source"),
            "source_version": pkg.get("source_version"),
            "status": "bad" if matched else "good",
            "critical": any(a["critical"] for a in matched),
            "max_cvss": max(scores) if scores else None, "fixed_version": fixed_version,
            "cve_entries": _cve_entries(matched), "advisories": matched}


def _cve_entries(advisories: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Halo's ``cve_entries``: one per CVE, with the highest score an advisory gives it; an
    advisory that names no CVE stands for itself."""
    out: Dict[str, Dict[str, Any]] = {}
    for adv in advisories:
        for cve in adv["cves"] or [adv["id"]]:
            entry = out.setdefault(cve, {"cve_entry": cve, "cvss_score": None,
                                         "suppressed": False})
            score = adv["cvss_score"]
            if score is not None and (entry["cvss_score"] is None or score > entry["cvss_score"]):
                entry["cvss_score"] = score
    return list(out.values())


def store_findings(db: Session, scan_id: str, findings: List[Dict[str, Any]]) -> None:
    """Vulnerable packages first (critical, then by name), then the rest by name."""
    findings = sorted(findings, key=lambda f: (f["status"] != "bad", not f["critical"],
                                               f["package_name"], f["package_version"]))
    for start in range(0, len(findings), 1000):
        db.execute(insert(SvmFinding), [dict(f, scan_id=scan_id, position=start + i)
                                        for i, f in enumerate(findings[start:start + 1000])])


# -- the API's shape ----------------------------------------------------------------------
def _remote(advisories: List[Dict[str, Any]]) -> Optional[bool]:
    vectors = [a.get("cvss_vector") for a in advisories if a.get("cvss_vector")]
    if not vectors:
        return None
    return any("AV:N" in v.split("/") for v in vectors)


def finding_dict(f: SvmFinding, base: str) -> Dict[str, Any]:
    advisories = list(f.advisories or [])
    return {
        "id": f.id, "url": "%s/v1/scans/%s/findings/%s" % (base, f.scan_id, f.id),
        "package_name": f.package_name, "package_version": f.package_version,
        "critical": bool(f.critical), "status": f.status,
        "cve_entries": list(f.cve_entries or []), "max_cvss": f.max_cvss,
        "remotely_exploitable": _remote(advisories),
        "architecture": f.architecture, "source_package": f.source_package,
        "source_version": f.source_version, "fixed_version": f.fixed_version,
        "advisories": [{k: a.get(k) for k in ("id", "summary", "url", "fixed_version", "cves",
                                                "cvss_score", "severity", "critical")}
                       for a in advisories],
    }


def finding_dicts(db: Session, scan_id: str, base: str) -> List[Dict[str, Any]]:
    rows = db.scalars(select(SvmFinding).where(SvmFinding.scan_id == scan_id)
                      .order_by(SvmFinding.position)).all()
    return [finding_dict(f, base) for f in rows]


def apply_result(db: Session, srv: Any, sc: Any, scan: Dict[str, Any],
                 packages: List[Dict[str, Any]]) -> Optional[str]:
    """Match a completed svm result's packages and store its findings and counts on the
    scan ``sc``; the reason the scan cannot judge the server, or None."""
    os_id = scan.get("platform") if isinstance(scan.get("platform"), str) else srv.platform
    version_id = (scan.get("platform_version") if isinstance(scan.get("platform_version"), str)
                  else srv.platform_version)
    if not packages:
        return "the agent reported no installed package (no package database read)"
    why, findings = match(db, host_ecosystems(os_id or "", version_id or ""), packages)
    if why:
        return why
    store_findings(db, sc.id, findings)
    bad = [f for f in findings if f["status"] == "bad"]
    sc.critical_findings_count = sum(1 for f in bad if f["critical"])
    sc.non_critical_findings_count = len(bad) - sc.critical_findings_count
    sc.ok_findings_count = len(findings) - len(bad)
    sc.status = scan_outcome(bool(bad))
    return None
