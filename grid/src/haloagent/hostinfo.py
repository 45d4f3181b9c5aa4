"""What the agent tells the grid about its host at registration (PROTOCOL.md)."""
from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct
from typing import Dict, List, Optional
from urllib.parse import urlsplit

from . import __version__
from .rootfs import RootFS

_SIOCGIFADDR = 0x8915  # <linux/sockios.h>: the IPv4 address of an interface


def os_release(fs: RootFS) -> Dict[str, str]:
    """``/etc/os-release`` (or ``/usr/lib/os-release``) of the scanned system as a dict."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = fs.read_text(path)
        except OSError:
            continue
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                fields[key.strip()] = value.strip().strip("\"'")
        return fields
    return {}


def host_name(fs: RootFS) -> str:
    """The scanned system's host name: a tree scanned with ``--root`` is its own system (an
    image, a prepared tree), so its ``/etc/hostname`` names it, not the scanning machine."""
    if fs.root != "/":
        try:
            name = fs.read_text("/etc/hostname").strip()
        except OSError:
            name = ""
        if name:
            return name
    return socket.gethostname()


def _ipv4_of(name: str) -> Optional[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            answer = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR,
                                 struct.pack("256s", name.encode()[:15]))
        except OSError:  # the interface has no IPv4 address
            return None
    return socket.inet_ntoa(answer[20:24])


def interfaces() -> List[Dict[str, str]]:
    """``[{"name", "ip"}]``: the IPv4 address of every interface but loopback."""
    found = []
    for _, name in socket.if_nameindex():
        ip = _ipv4_of(name)
        if ip and not ipaddress.ip_address(ip).is_loopback:
            found.append({"name": name, "ip": ip})
    return found


def primary_ip(grid_url: str, candidates: List[Dict[str, str]]) -> Optional[str]:
    """The address this host uses to reach the grid: connecting a UDP socket picks the
    route (and source address) without sending anything."""
    parts = urlsplit(grid_url)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((parts.hostname or "", parts.port or 443))
            address = sock.getsockname()[0]
    except OSError:
        address = None
    if address and not ipaddress.ip_address(address).is_loopback:
        return address
    return candidates[0]["ip"] if candidates else address


def registration(grid_url: str, fs: RootFS, tag: Optional[str],
                 server_label: Optional[str]) -> Dict[str, object]:
    """The body of ``POST /agent/v1/register``."""
    release = os_release(fs)
    uname = os.uname()
    hostname = host_name(fs)
    found = interfaces()
    body: Dict[str, object] = {
        "hostname": hostname.split(".")[0],
        "reported_fqdn": socket.getfqdn(hostname),
        "server_label": server_label or hostname.split(".")[0],
        "platform": release.get("ID", "linux"),
        "platform_version": release.get("VERSION_ID", ""),
        "os_version": uname.release,
        "kernel_name": uname.sysname,
        "daemon_version": __version__,
        "interfaces": found,
        "primary_ip_address": primary_ip(grid_url, found),
    }
    if tag:
        body["tag"] = tag
    return body
