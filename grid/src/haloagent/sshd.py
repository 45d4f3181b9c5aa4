"""The effective global configuration of OpenSSH's sshd, as ``sshd -T`` computes it.

Read from the files of the scanned tree, never by running sshd (a prepared tree, an image
or a host without the binary are scanned the same way). What sshd does, and so this does:

* a line is a keyword, then whitespace or one ``=``, then arguments; keywords and the
  values of yes/no and multi-state options are case-insensitive; arguments may be quoted;
  an argument that starts with ``#`` ends the line (a comment), ``yes#x`` is a bad value;
* the *first* value of a keyword wins (aliases such as ``ChallengeResponseAuthentication``
  set the same option); a few keywords (``AllowUsers``, ``HostKey``, ...) accumulate;
* ``Include`` is followed where it stands: relative paths are relative to ``/etc/ssh``,
  globs are expanded in lexical order (``*`` skips dot files, as glob(3)), a pattern that
  matches nothing is fine, nesting deeper than 16 is an error; a ``Match`` inside an
  included file ends with that file;
* ``Match`` blocks do not set global values (``sshd -T`` without ``-C``), except
  ``Match all``, which sshd applies while loading;
* an unset keyword has its compiled-in default. The defaults below are what
  ``sshd -T`` printed for an empty configuration with Debian 12's ``openssh-server``
  1:9.2p1-2+deb12u10 (OpenSSH 9.2p1). The defaults the default policies rely on
  (PermitRootLogin, PermitEmptyPasswords, X11Forwarding, MaxAuthTries, IgnoreRhosts,
  HostbasedAuthentication, PermitUserEnvironment, LogLevel) have not changed since
  OpenSSH 7.0 (2015), so they hold for Debian 9+ and RHEL 8+ as well.

A configuration sshd would refuse (a bad value, a missing argument, an unreadable
included file) raises ``SshdConfigError``: sshd would not start with it, so the value a
running server uses is not known from the files.
"""
from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from typing import Dict, List, Optional, Tuple

from .rootfs import RootFS

SSHD_DIR = "/etc/ssh"
MAX_INCLUDE_DEPTH = 16  # SERVCONF_MAX_DEPTH
DEFAULTS_FROM = "OpenSSH 9.2p1 (Debian 12 openssh-server 1:9.2p1-2+deb12u10)"

# ``sshd -T -f /dev/null``-style output of an empty configuration (host key, listen
# addresses and algorithm lists left out: they depend on the machine or are long).
DEFAULTS: Dict[str, str] = {
    "port": "22", "addressfamily": "any", "usepam": "no", "logingracetime": "120",
    "x11displayoffset": "10", "maxauthtries": "6", "maxsessions": "10",
    "clientaliveinterval": "0", "clientalivecountmax": "3", "requiredrsasize": "1024",
    "streamlocalbindmask": "0177", "unusedconnectiontimeout": "none",
    "permitrootlogin": "without-password", "ignorerhosts": "yes",
    "ignoreuserknownhosts": "no", "hostbasedauthentication": "no",
    "hostbasedusesnamefrompacketonly": "no", "pubkeyauthentication": "yes",
    "kerberosauthentication": "no", "kerberosorlocalpasswd": "yes",
    "kerberosticketcleanup": "yes", "gssapiauthentication": "no",
    "gssapicleanupcredentials": "yes", "gssapikeyexchange": "no",
    "gssapistrictacceptorcheck": "yes", "gssapistorecredentialsonrekey": "no",
    "passwordauthentication": "yes", "kbdinteractiveauthentication": "yes",
    "printmotd": "yes", "printlastlog": "yes", "x11forwarding": "no",
    "x11uselocalhost": "yes", "permittty": "yes", "permituserrc": "yes", "strictmodes": "yes",
    "tcpkeepalive": "yes", "permitemptypasswords": "no", "compression": "yes",
    "gatewayports": "no", "usedns": "no", "allowtcpforwarding": "yes",
    "allowagentforwarding": "yes", "disableforwarding": "no",
    "allowstreamlocalforwarding": "yes", "streamlocalbindunlink": "no",
    "fingerprinthash": "SHA256", "exposeauthinfo": "no", "pidfile": "/run/sshd.pid",
    "modulifile": "/etc/ssh/moduli", "xauthlocation": "/usr/bin/xauth", "banner": "none",
    "forcecommand": "none", "chrootdirectory": "none", "trustedusercakeys": "none",
    "revokedkeys": "none", "securitykeyprovider": "internal",
    "authorizedprincipalsfile": "none", "versionaddendum": "none",
    "authorizedkeyscommand": "none", "authorizedkeyscommanduser": "none",
    "authorizedprincipalscommand": "none", "authorizedprincipalscommanduser": "none",
    "hostkeyagent": "none", "loglevel": "INFO", "syslogfacility": "AUTH",
    "authorizedkeysfile": ".ssh/authorized_keys .ssh/authorized_keys2",
    "authenticationmethods": "any", "maxstartups": "10:30:100",
    "persourcemaxstartups": "none", "persourcenetblocksize": "32:128",
    "permittunnel": "no", "ipqos": "lowdelay throughput", "rekeylimit": "0 0",
    "permitopen": "any", "permitlisten": "any", "permituserenvironment": "no",
    "pubkeyauthoptions": "none",
}

ALIASES = {
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "dsaauthentication": "pubkeyauthentication",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "hostbasedacceptedkeytypes": "hostbasedacceptedalgorithms",
}

# keywords whose every occurrence adds to the value (sshd -T prints one line each)
ACCUMULATING = {
    "allowusers", "denyusers", "allowgroups", "denygroups", "acceptenv", "hostkey",
    "hostcertificate", "listenaddress", "subsystem", "port", "setenv",
}

_FLAG = {"yes": "yes", "no": "no"}
# value spelled in the file (lower case) -> value as sshd -T prints it
CHOICES: Dict[str, Dict[str, str]] = {
    "permitrootlogin": {"yes": "yes", "no": "no", "prohibit-password": "without-password",
                        "without-password": "without-password",
                        "forced-commands-only": "forced-commands-only"},
    "ignorerhosts": {"yes": "yes", "no": "no", "shosts-only": "shosts-only"},
    "gatewayports": {"yes": "yes", "no": "no", "clientspecified": "clientspecified"},
    "allowtcpforwarding": {"yes": "yes", "all": "yes", "no": "no", "local": "local",
                           "remote": "remote"},
    "allowstreamlocalforwarding": {"yes": "yes", "all": "yes", "no": "no", "local": "local",
                                   "remote": "remote"},
    "compression": {"yes": "yes", "delayed": "yes", "no": "no"},
    "permittunnel": {"yes": "yes", "point-to-point": "point-to-point",
                     "ethernet": "ethernet", "no": "no"},
    "addressfamily": {"any": "any", "inet": "inet", "inet6": "inet6"},
    "loglevel": {"quiet": "QUIET", "fatal": "FATAL", "error": "ERROR", "info": "INFO",
                 "verbose": "VERBOSE", "debug": "DEBUG", "debug1": "DEBUG",
                 "debug2": "DEBUG2", "debug3": "DEBUG3"},
}
for _name in ("permitemptypasswords", "x11forwarding", "hostbasedauthentication",
              "pubkeyauthentication", "passwordauthentication", "kbdinteractiveauthentication",
              "usepam", "strictmodes", "tcpkeepalive", "printmotd", "printlastlog",
              "x11uselocalhost", "permittty", "permituserrc", "usedns", "exposeauthinfo",
              "ignoreuserknownhosts", "hostbasedusesnamefrompacketonly", "disableforwarding",
              "kerberosauthentication", "kerberosorlocalpasswd", "kerberosticketcleanup",
              "gssapiauthentication", "gssapicleanupcredentials", "gssapikeyexchange",
              "gssapistrictacceptorcheck", "gssapistorecredentialsonrekey",
              "allowagentforwarding", "streamlocalbindunlink"):
    CHOICES[_name] = _FLAG
INTEGERS = {"maxauthtries", "maxsessions", "clientalivecountmax", "x11displayoffset"}
TIMES = {"logingracetime", "clientaliveinterval"}
DEPRECATED = {"protocol", "useprivilegeseparation", "rhostsrsaauthentication",
              "rsaauthentication", "uselogin", "keyregenerationinterval", "serverkeybits",
              "pamauthenticationviakbdint", "showpatchlevel"}

_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SshdConfigError(Exception):
    """sshd would refuse this configuration (and so would not start with it)."""


def canonical(keyword: str) -> str:
    keyword = keyword.lower()
    return ALIASES.get(keyword, keyword)


def is_case_insensitive(keyword: str) -> bool:
    """Are the values of ``keyword`` compared without regard to case (by sshd)?"""
    keyword = canonical(keyword)
    return keyword in CHOICES or keyword in INTEGERS or keyword in TIMES


def split_line(line: str) -> Tuple[str, List[str]]:
    """(keyword, arguments) of one configuration line; ("", []) for blank and comments.

    The keyword ends at whitespace or ``=`` (one ``=`` may follow, with whitespace around
    it); the arguments are split as OpenSSH's argv_split(): quotes group, a backslash
    escapes a quote, space or backslash, an unquoted argument starting with ``#`` ends
    the line."""
    line = line.strip()
    if not line or line.startswith("#"):
        return "", []
    match = re.match(r"([^\s=]+)[ \t\f\v]*=?[ \t\f\v]*(.*)$", line)
    if match is None:  # starts with "="
        raise SshdConfigError("no keyword before '='")
    keyword, rest = match.groups()
    args: List[str] = []
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t\f\v":
            i += 1
        if i >= n:
            break
        if rest[i] == "#":
            break
        arg, quote = [], None
        while i < n:
            ch = rest[i]
            if ch == "\\" and i + 1 < n and rest[i + 1] in "\"' \\" and quote != "'":
                arg.append(rest[i + 1])
                i += 2
                continue
            if quote:
                if ch == quote:
                    quote = None
                else:
                    arg.append(ch)
            elif ch in "\"'":
                quote = ch
            elif ch in " \t\f\v":
                break
            else:
                arg.append(ch)
            i += 1
        if quote:
            raise SshdConfigError("invalid quotes")
        args.append("".join(arg))
    return keyword, args


def _seconds(text: str) -> Optional[int]:
    """convtime(): ``90``, ``2m``, ``1h30m`` -> seconds; None when malformed."""
    parts = re.findall(r"(\d+)([smhdwSMHDW]?)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        return None
    return sum(int(a) * _TIME_UNITS[b.lower()] for a, b in parts)


def normalize(keyword: str, args: List[str]) -> str:
    """The value as ``sshd -T`` prints it; raises SshdConfigError for a value sshd refuses."""
    if not args or args[0] == "":
        raise SshdConfigError("missing argument for %s" % keyword)
    value = args[0]
    single = keyword in CHOICES or keyword in INTEGERS or keyword in TIMES
    if single and len(args) > 1:
        raise SshdConfigError("keyword %s extra arguments at end of line" % keyword)
    if keyword in CHOICES:
        choice = CHOICES[keyword].get(value.lower())
        if choice is None:
            raise SshdConfigError("unsupported value %r for %s" % (value, keyword))
        return choice
    if keyword in INTEGERS:
        if not re.fullmatch(r"-?\d+", value):
            raise SshdConfigError("%s integer value invalid: %r" % (keyword, value))
        number = int(value)
        if number < 0 or number > 2147483647:
            raise SshdConfigError("%s integer value out of range: %r" % (keyword, value))
        return str(number)
    if keyword in TIMES:
        seconds = _seconds(value)
        if seconds is None:
            raise SshdConfigError("%s invalid time value: %r" % (keyword, value))
        return str(seconds)
    if keyword == "permituserenvironment":
        lowered = value.lower()
        return lowered if lowered in ("yes", "no") else value
    return " ".join(args)


class Setting:
    """One value of a keyword and where it was set."""

    def __init__(self, value: str, source: str) -> None:
        self.value = value
        self.source = source


class SshdConfig:
    """The settings of one sshd_config tree: global ones (in order) and Match-only ones."""

    def __init__(self) -> None:
        self.global_settings: Dict[str, List[Setting]] = {}
        self.match_settings: Dict[str, List[Setting]] = {}
        self.files: List[str] = []

    def effective(self, keyword: str) -> Tuple[List[str], str]:
        """(values, source) of a keyword: the first global value (all of them for an
        accumulating keyword), else the compiled-in default, else ``[]``."""
        keyword = canonical(keyword)
        settings = self.global_settings.get(keyword)
        if settings:
            if keyword in ACCUMULATING:
                return [s.value for s in settings], ", ".join(s.source for s in settings)
            return [settings[0].value], settings[0].source
        if keyword in DEFAULTS:
            return [DEFAULTS[keyword]], "compiled-in default of %s" % DEFAULTS_FROM
        return [], "not set"

    def match_only(self, keyword: str) -> List[str]:
        """Where a Match block (other than ``Match all``) sets the keyword: those values
        apply to some connections only and are not the global value."""
        return ["%s (%s)" % (s.value, s.source) for s in self.match_settings.get(canonical(keyword), [])]


def _glob(fs: RootFS, pattern: str) -> List[str]:
    """glob(3) under the root: host paths matching ``pattern`` (absolute), sorted."""
    parts = [p for p in pattern.split("/") if p]
    found = ["/"]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        following: List[str] = []
        for base in found:
            if not any(c in part for c in "*?["):
                candidate = base.rstrip("/") + "/" + part
                if last:
                    if fs.exists(candidate):
                        following.append(candidate)
                else:
                    following.append(candidate)
                continue
            try:
                names = os.listdir(fs.resolve(base))
            except OSError:
                continue
            for name in sorted(names):
                if name.startswith(".") and not part.startswith("."):
                    continue
                if fnmatch.fnmatchcase(name, part):
                    following.append(base.rstrip("/") + "/" + name)
        found = following
    return sorted(found)


def load(fs: RootFS, path: str = SSHD_DIR + "/sshd_config") -> SshdConfig:
    """Parse ``path`` and what it includes. Raises OSError when the main file cannot be
    read, SshdConfigError for a configuration sshd would refuse."""
    config = SshdConfig()
    _load_file(fs, path, config, active=True, depth=0, required=True)
    return config


def _load_file(fs: RootFS, path: str, config: SshdConfig, active: bool, depth: int,
               required: bool = False) -> None:
    try:
        text = fs.read_text(path)
    except IsADirectoryError:
        return
    except OSError as exc:
        if required:
            raise
        if fs.exists(path) and os.path.isdir(fs.resolve(path)):
            return  # sshd reads a directory as an empty file
        raise SshdConfigError("cannot read included file %s: %s" % (path, exc.strerror or exc))
    config.files.append(path)
    in_match = False
    for number, line in enumerate(text.split("\n"), 1):
        where = "%s line %d" % (path, number)
        try:
            keyword, args = split_line(line)
        except SshdConfigError as exc:
            raise SshdConfigError("%s: %s" % (where, exc))
        if not keyword:
            continue
        key = canonical(keyword)
        if key == "match":
            criteria = [a.lower() for a in args]
            if not criteria:
                raise SshdConfigError("%s: Match without criteria" % where)
            if "all" in criteria and len(criteria) > 1:
                raise SshdConfigError("%s: 'all' cannot be combined with other Match "
                                      "criteria" % where)
            in_match = criteria != ["all"]
            continue
        if not args:
            raise SshdConfigError("%s: no argument after keyword %r" % (where, keyword))
        if key == "include":
            if depth + 1 > MAX_INCLUDE_DEPTH:
                raise SshdConfigError("%s: Include nesting depth exceeded" % where)
            for pattern in args:
                if not pattern.startswith("/"):
                    pattern = posixpath.normpath(SSHD_DIR + "/" + pattern)
                for included in _glob(fs, pattern):
                    # a Match in the included file ends with it (sshd restores the state)
                    _load_file(fs, included, config, active and not in_match, depth + 1)
            continue
        if key in DEPRECATED:
            continue
        try:
            value = normalize(key, args)
        except SshdConfigError as exc:
            raise SshdConfigError("%s: %s" % (where, exc))
        target = config.match_settings if (in_match or not active) else config.global_settings
        target.setdefault(key, []).append(Setting(value, where))
