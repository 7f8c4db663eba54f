//! The image commands: on the store directly (`--root`) or through the
//! daemon.

use super::{Command, Group, JSON, ROOT, SOCKET, cmd};
use crate::cli::args::Opt;

pub const IMPORT: Command = cmd(
    "import",
    "PATH",
    "import an OCI layout directory or a docker-archive tarball into the store",
    &[
        Opt::value(
            "name",
            "REF",
            "name the image REF instead of the name the archive carries",
        ),
        ROOT,
    ],
    "berth import ./busybox.tar --name localhost/demo/busybox:latest",
    Group::Images,
);

pub const SAVE: Command = cmd(
    "save",
    "REF...",
    "write images from the store to a docker-archive (or OCI archive) tarball",
    &[
        Opt::value(
            "output",
            "FILE",
            "the archive to write, replaced only once complete (\"-\" or none: standard output)",
        )
        .short('o'),
        Opt::value(
            "format",
            "FORMAT",
            "docker (docker load, podman load, berth import) or oci (an oci-archive); default docker",
        ),
        ROOT,
    ],
    "berth save localhost/demo/busybox:latest -o busybox.tar",
    Group::Images,
);

pub const PULL: Command = cmd(
    "pull",
    "REF",
    "pull an image from a registry (through the daemon, or into --root directly)",
    &[
        Opt::value(
            "platform",
            "OS/ARCH[/VARIANT]",
            "the platform to pull from a multi-platform image (default: this machine's)",
        ),
        Opt::value(
            "auth-file",
            "PATH",
            "credentials in Docker's config.json format (default: the usual places)",
        ),
        Opt::switch(
            "insecure",
            "allow plain HTTP to a registry that is not on loopback",
        ),
        Opt::value(
            "ca-file",
            "PEM",
            "trust this CA bundle instead of the system's",
        ),
        Opt::value(
            "timeout",
            "SECS",
            "each request's timeout, 1-3600 (default 30)",
        ),
        Opt::value(
            "max-rate",
            "BYTES/S",
            "cap the download rate, all layers together (\"1m\" is 1 MiB/s; default: berth.json pull.max_rate, else none)",
        ),
        Opt::value(
            "max-parallel",
            "N",
            "layers downloaded at once, 1-16 (default: berth.json pull.max_parallel, else 3)",
        ),
        Opt::value(
            "config",
            "DIR",
            "read berth.json's registries, pull and store settings from DIR",
        ),
        ROOT,
        SOCKET,
    ],
    "berth pull 127.0.0.1:5000/demo/busybox:1 --max-rate 512k",
    Group::Images,
);

pub const IMAGES: Command = cmd(
    "images",
    "",
    "list the images in the store",
    &[JSON, ROOT],
    "berth images --json",
    Group::Images,
);

pub const RMI: Command = cmd(
    "rmi",
    "REF",
    "remove an image reference, and what nothing else uses",
    &[
        Opt::switch(
            "force",
            "remove it even while a container uses it (the container keeps its layers)",
        ),
        JSON,
        ROOT,
    ],
    "berth rmi localhost/demo/busybox:latest",
    Group::Images,
);

pub const PRUNE: Command = cmd(
    "prune",
    "",
    "remove every blob and layer that no image or container uses",
    &[JSON, ROOT],
    "berth prune --json",
    Group::Images,
);

pub const STORE: Command = cmd(
    "store",
    "verify",
    "re-hash every blob and layer in the store",
    &[
        Opt::switch(
            "repair",
            "remove what is corrupt (the next pull fetches it again)",
        ),
        JSON,
        ROOT,
    ],
    "berth store verify --repair",
    Group::Images,
);

pub const MKIMAGE: Command = cmd(
    "mkimage",
    "",
    "build a bootable initramfs or GPT disk image: berth as /init, a config, its images, modules and CA bundle (docs/images.md)",
    &[
        Opt::value(
            "config",
            "DIR",
            "the config directory, /etc/berth in the image (required)",
        ),
        Opt::value(
            "kernel",
            "VMLINUZ",
            "the kernel the image is for: its architecture and release (required)",
        ),
        Opt::value(
            "image",
            "REF|PATH",
            "preload an image: an OCI layout or archive by path, else a reference in --root's store (repeatable)",
        ),
        Opt::value(
            "modules",
            "DIR",
            "the kernel's module tree (default /lib/modules/RELEASE, the kernel's release)",
        ),
        Opt::value(
            "add-module",
            "NAME",
            "also load this module, with what it needs: the target's disk or network driver (repeatable)",
        ),
        Opt::switch(
            "config-drive",
            "add vfat, iso9660 and their character sets, for a config drive named by berth.config= (docs/pid1.md)",
        ),
        Opt::value(
            "format",
            "FORMAT",
            "initramfs (the default) or disk: a raw GPT image, read-only ext4 root and a data partition grown at first boot",
        ),
        Opt::value(
            "compress",
            "ALGO",
            "zstd (level 19), zstd:LEVEL (1-19), gzip or none; default zstd",
        ),
        Opt::value(
            "ca-bundle",
            "PEM",
            "the CA certificates for TLS pulls inside (default /etc/ssl/certs/ca-certificates.crt; none: no bundle)",
        ),
        Opt::value(
            "berth",
            "BIN",
            "the static berth to boot as /init (default: this berth, if it is static)",
        ),
        Opt::value(
            "root",
            "DIR",
            "the store --image REF is read from (default /var/lib/berth)",
        ),
        Opt::value(
            "output",
            "FILE",
            "the image to write, replaced only once complete (required)",
        )
        .short('o'),
    ],
    "berth mkimage --config ./edge --kernel /boot/vmlinuz-6.1.0-57-cloud-amd64 --image ./app-oci -o initrd.img",
    Group::Images,
);
