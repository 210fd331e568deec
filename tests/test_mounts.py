"""The kernel's table of mounts, read so that no folder holding a mount point (a bind mount of anyone's folder) is
removed whole."""

from __future__ import annotations

import os

from xmempp.mounts import mount_points, mounted_in


def test_mount_points_are_read_with_the_kernels_escapes(tmp_path):
    table = tmp_path / "mountinfo"
    table.write_text("22 1 0:21 / / rw - ext4 /dev/root rw\n"
                     "95 22 0:21 /home/u/x /tmp/xmempp-app-9-a\\040b rw,relatime shared:1 - ext4 /dev/root rw\n")
    assert mount_points(table) == {"/", "/tmp/xmempp-app-9-a b"}
    assert mount_points(tmp_path / "missing") == set()


def test_a_mount_point_in_a_folder_or_the_folder_itself_is_found_and_a_neighbour_is_not(tmp_path):
    (tmp_path / "round" / "masks").mkdir(parents=True)
    (tmp_path / "round-2").mkdir()
    real = os.path.realpath(tmp_path)
    assert mounted_in(tmp_path / "round", {f"{real}/round/masks"}) == f"{real}/round/masks"
    assert mounted_in(tmp_path / "round", {f"{real}/round"}) == f"{real}/round"
    assert mounted_in(tmp_path / "round", {f"{real}/round-2", "/"}) is None
