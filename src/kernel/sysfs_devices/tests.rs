use std::os::unix::fs::symlink;

use super::*;

const TTY: &str = "devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0";

/// A sysfs tree with an FTDI adapter's tty, a loop disk, and junk.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let usb = root.join("devices/pci0000:00/0000:00:14.0/usb1/1-2");
    fs::create_dir_all(root.join(TTY)).expect("mkdir");
    fs::create_dir_all(root.join("class/tty")).expect("mkdir");
    fs::create_dir_all(root.join("class/block")).expect("mkdir");
    for (file, text) in [
        ("idVendor", "0403\n"),
        ("idProduct", "6001\n"),
        ("serial", "A10KXYZ\n"),
    ] {
        fs::write(usb.join(file), text).expect("write");
    }
    // The hub above has ids too: the nearest one wins.
    fs::write(usb.join("../idVendor"), "1d6b\n").expect("write");
    fs::write(
        root.join(TTY).join("uevent"),
        "MAJOR=188\nMINOR=0\nDEVNAME=ttyUSB0\n",
    )
    .expect("write");
    symlink(
        "../../../../../../../../class/tty",
        root.join(TTY).join("subsystem"),
    )
    .expect("ln");
    let disk = root.join("devices/virtual/block/loop3");
    fs::create_dir_all(&disk).expect("mkdir");
    fs::write(
        disk.join("uevent"),
        "MAJOR=7\nMINOR=3\nDEVNAME=loop3\nDEVTYPE=disk\n",
    )
    .expect("w");
    symlink("../../../../class/block", disk.join("subsystem")).expect("ln");
    let bad = root.join("devices/virtual/misc/evil");
    fs::create_dir_all(&bad).expect("mkdir");
    fs::write(
        bad.join("uevent"),
        "MAJOR=10\nMINOR=1\nDEVNAME=../../etc/shadow\n",
    )
    .expect("w");
    symlink("../../../../class/block", bad.join("subsystem")).expect("ln");
    fs::create_dir_all(root.join("dev/char")).expect("mkdir");
    fs::create_dir_all(root.join("dev/block")).expect("mkdir");
    symlink(format!("../../{TTY}"), root.join("dev/char/188:0")).expect("ln");
    symlink(
        "../../devices/virtual/block/loop3",
        root.join("dev/block/7:3"),
    )
    .expect("ln");
    symlink(
        "../../devices/virtual/misc/evil",
        root.join("dev/char/10:1"),
    )
    .expect("ln");
    symlink("../../nowhere", root.join("dev/char/1:1")).expect("ln");
    dir
}

#[test]
fn a_tty_gets_the_ids_of_its_usb_device() {
    let sys = fixture();
    let ids = usb_ids(sys.path(), &format!("/{TTY}"));
    assert_eq!(ids.vendor.as_deref(), Some("0403"));
    assert_eq!(ids.product.as_deref(), Some("6001"));
    assert_eq!(ids.serial.as_deref(), Some("A10KXYZ"));
    assert_eq!(
        usb_ids(sys.path(), "/devices/virtual/block/loop3"),
        UsbIds::default()
    );
    // A path that climbs out of the root finds nothing outside it.
    assert_eq!(usb_ids(sys.path(), "/../../../../.."), UsbIds::default());
    assert_eq!(usb_ids(sys.path(), "/devices/none/such"), UsbIds::default());
}

#[test]
fn an_oversized_attribute_is_not_read() {
    let sys = fixture();
    let usb = sys.path().join("devices/pci0000:00/0000:00:14.0/usb1/1-2");
    fs::write(usb.join("serial"), "S".repeat(300)).expect("write");
    assert_eq!(usb_ids(sys.path(), &format!("/{TTY}")).serial, None);
}

#[test]
fn the_dev_index_lists_devices_with_their_subsystem() {
    let sys = fixture();
    let mut found = scan_sys_dev(sys.path(), 100);
    found.sort_by_key(|d| (d.major, d.minor));
    let names: Vec<(&str, &str, u32, u32)> = found
        .iter()
        .map(|d| (d.subsystem.as_str(), d.devname.as_str(), d.major, d.minor))
        .collect();
    assert_eq!(
        names,
        [("block", "loop3", 7, 3), ("tty", "ttyUSB0", 188, 0)]
    );
    assert_eq!(found[1].devpath, format!("/{TTY}"));
    assert_eq!(found[1].kind, NodeKind::Char);
    assert_eq!(scan_sys_dev(sys.path(), 1).len(), 1);
    assert!(scan_sys_dev(&sys.path().join("none"), 10).is_empty());
}
