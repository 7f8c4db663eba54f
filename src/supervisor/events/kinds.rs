//! The kinds berth emits (docs/events.md describes their data).

pub const PULL_STARTED: &str = "pull.started";
pub const PULL_PROGRESS: &str = "pull.progress";
pub const PULL_DONE: &str = "pull.done";
pub const PULL_FAILED: &str = "pull.failed";
pub const IMAGE_IMPORTED: &str = "image.imported";
pub const IMAGE_IMPORT_FAILED: &str = "image.import_failed";
pub const CONTAINER_CREATED: &str = "container.created";
pub const CONTAINER_STARTED: &str = "container.started";
pub const CONTAINER_EXITED: &str = "container.exited";
pub const CONTAINER_OOM_KILLED: &str = "container.oom_killed";
pub const CONTAINER_RESTARTING: &str = "container.restarting";
pub const CONTAINER_UNHEALTHY: &str = "container.unhealthy";
pub const CONTAINER_HEALTHY: &str = "container.healthy";
pub const CONTAINER_EXEC: &str = "container.exec";
pub const CONTAINER_EXEC_EXITED: &str = "container.exec_exited";
pub const CONTAINER_STOPPED: &str = "container.stopped";
pub const CONTAINER_REMOVED: &str = "container.removed";
pub const CONFIG_RELOADED: &str = "config.reloaded";
pub const CONFIG_REJECTED: &str = "config.rejected";
pub const CONFIG_APPLY_STARTED: &str = "config.apply_started";
pub const CONFIG_APPLIED: &str = "config.applied";
pub const CONFIG_APPLY_ROLLED_BACK: &str = "config.apply_rolled_back";
/// The kernel command line's `berth.config=` source was applied.
pub const CONFIG_FIRST_BOOT_APPLIED: &str = "config.first_boot_applied";
/// It was the content applied before (its digest is recorded): not
/// applied again.
pub const CONFIG_FIRST_BOOT_UNCHANGED: &str = "config.first_boot_unchanged";
/// It was refused (not found, not fetched, invalid, rolled back): the
/// baked config runs.
pub const CONFIG_FIRST_BOOT_REFUSED: &str = "config.first_boot_refused";
/// A disk image's data partition (and its ext4) was grown to the disk's
/// end at boot (docs/images.md, "Disk images").
pub const DATA_PARTITION_GROWN: &str = "data_partition.grown";
pub const SUBSCRIBER_DROPPED: &str = "subscriber.dropped";
pub const WEBHOOK_FAILING: &str = "webhook.failing";
pub const WEBHOOK_RECOVERED: &str = "webhook.recovered";
pub const UPDATE_AVAILABLE: &str = "update.available";
pub const UPDATE_DEFERRED: &str = "update.deferred";
pub const UPDATE_STARTED: &str = "update.started";
pub const UPDATE_DONE: &str = "update.done";
pub const UPDATE_ROLLED_BACK: &str = "update.rolled_back";
pub const UPDATE_FAILED: &str = "update.failed";
pub const DEVICE_ADDED: &str = "device.added";
pub const DEVICE_REMOVED: &str = "device.removed";
pub const CLOCK_UNSYNCHRONIZED: &str = "clock.unsynchronized";
/// berth.json `host_network`: a link got its address (DHCP or static).
pub const NETWORK_UP: &str = "network.up";
/// berth.json `host_network`: SNTP set the clock (first sync, or a step).
pub const CLOCK_SYNCHRONIZED: &str = "clock.synchronized";
