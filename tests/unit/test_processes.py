"""/proc with hidepid (installer/stack/processes.py): the /etc/fstab edit keeps what the
operator wrote, and the live mount is read from /proc/self/mounts."""

from __future__ import annotations

from installer.stack.processes import fstab_with, mounted_options, proc_line, with_options

WANTED = {"hidepid": "invisible", "gid": "proc"}
DEBIAN = ("# /etc/fstab: static file system information.\n"
          "UUID=1234 / ext4 errors=remount-ro 0 1\n"
          "UUID=5678 none swap sw 0 0\n")


def test_a_missing_proc_line_is_appended_and_the_rest_kept() -> None:
    new = fstab_with(DEBIAN, WANTED)
    assert new == DEBIAN + "proc /proc proc defaults,hidepid=invisible,gid=proc 0 0\n"
    assert fstab_with(new, WANTED) == new  # idempotent


def test_an_empty_or_unterminated_fstab() -> None:
    assert fstab_with("", WANTED) == "proc /proc proc defaults,hidepid=invisible,gid=proc 0 0\n"
    assert fstab_with("UUID=1 / ext4 defaults 0 1", WANTED).splitlines()[1].startswith("proc ")


def test_an_operators_proc_line_keeps_its_own_options_and_fields() -> None:
    text = DEBIAN + "proc\t/proc\tproc\tnosuid,hidepid=noaccess,nodev,gid=adm\t0\t2\n# end\n"
    new = fstab_with(text, WANTED)
    assert new.splitlines()[3] == "proc /proc proc nosuid,hidepid=invisible,nodev,gid=proc 0 2"
    assert new.splitlines()[:3] == DEBIAN.splitlines() and new.endswith("# end\n")
    assert fstab_with(new, WANTED) == new


def test_commented_proc_lines_are_not_the_proc_line() -> None:
    text = "#proc /proc proc defaults 0 0\n"
    assert proc_line(text) is None
    assert fstab_with(text, WANTED) == text + "proc /proc proc defaults,hidepid=invisible," \
                                              "gid=proc 0 0\n"


def test_duplicate_keys_collapse_to_one() -> None:
    assert with_options("hidepid=2,rw,hidepid=0", {"hidepid": "invisible"}) == \
        "hidepid=invisible,rw"


def test_mounted_options_of_proc() -> None:
    mounts = ("sysfs /sys sysfs rw 0 0\n"
              "proc /proc proc rw,nosuid,relatime,gid=998,hidepid=invisible 0 0\n"
              "proc /proc/sys proc ro,relatime 0 0\n")
    assert mounted_options(mounts) == {"rw": "", "nosuid": "", "relatime": "", "gid": "998",
                                       "hidepid": "invisible"}
    assert mounted_options("sysfs /sys sysfs rw 0 0\n") is None
