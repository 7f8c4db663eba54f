//! Seccomp filters for containers (being written).
