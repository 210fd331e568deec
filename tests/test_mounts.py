"""The kernel's table of mounts, read so that no folder holding a mount point (a bind mount of anyone's folder) is
removed whole."""

from __future__ import annotations

import os
import sys

from xmempp.mounts import mount_points, mount_risk


def test_mount_points_are_read_with_the_kernels_escapes(tmp_path):
    table = tmp_path / "mountinfo"
    table.write_text("22 1 0:21 / / rw - ext4 /dev/root rw\n"
                     "95 22 0:21 /home/u/x /tmp/xmempp-app-9-a\\040b rw,relatime shared:1 - ext4 /dev/root rw\n")
    assert mount_points(table) == {"/", "/tmp/xmempp-app-9-a b"}


def test_a_mount_point_in_a_folder_or_the_folder_itself_is_found_and_a_neighbour_is_not(tmp_path):
    (tmp_path / "round" / "masks").mkdir(parents=True)
    (tmp_path / "round-2").mkdir()
    real = os.path.realpath(tmp_path)
    assert mount_risk(tmp_path / "round", {f"{real}/round/masks"}) == f"it holds a mount point ({real}/round/masks)"
    assert mount_risk(tmp_path / "round", {f"{real}/round"}) == f"it is a mount point ({real}/round)"
    assert mount_risk(tmp_path / "round", {f"{real}/round-2", "/"}) is None


def test_without_the_table_on_linux_no_folder_may_be_removed_whole(tmp_path, monkeypatch):
    """With /proc unreadable (a sandbox), a bind mount inside a removed folder went unseen and was emptied
    (twenty-fifth hostile round)."""
    import xmempp.mounts

    monkeypatch.setattr(sys, "platform", "linux")
    assert mount_points(tmp_path / "missing") is None
    monkeypatch.setattr(xmempp.mounts, "mount_points", lambda: None)
    assert mount_risk(tmp_path) == ("whether a file system is mounted in it cannot be told "
                                          "(/proc/self/mountinfo cannot be read)")


def test_a_table_that_lacks_the_root_is_no_table(tmp_path):
    """An empty mountinfo planted in a sandbox was read as "nothing is mounted", and a bind-mounted folder inside a
    copied round was emptied (twenty-sixth hostile round)."""
    table = tmp_path / "mountinfo"
    table.write_text("")
    assert mount_points(table) is None
    table.write_text("95 22 0:21 /home/u/x /tmp/a rw - ext4 /dev/root rw\n")
    assert mount_points(table) is None
