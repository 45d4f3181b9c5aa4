import socket

from haloagent.hostinfo import host_name
from haloagent.rootfs import RootFS


def test_a_scanned_tree_is_named_by_its_own_etc_hostname(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hostname").write_text("web7\n")
    assert host_name(RootFS(str(tmp_path))) == "web7"


def test_a_tree_without_a_name_and_the_live_root_use_the_machine_name(tmp_path):
    assert host_name(RootFS(str(tmp_path))) == socket.gethostname()
    assert host_name(RootFS("/")) == socket.gethostname()
