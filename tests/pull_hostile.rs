//! Registries that try to hold a pull (tests/common/hostile_registry.rs):
//! trickled, endless and oversized answers to every kind of request — a
//! token, a manifest, an index, a blob. Each pull must fail with an error
//! that names the request and what went wrong, within a bounded time (short
//! `--timeout`s keep these to seconds) and with its peak RSS at most 8 MiB
//! above a pull refused at once. Run with --nocapture to see the numbers.

mod common;

use anyhow::Result;
use common::hostile_registry::{Shape, refused};
use common::require_root;

#[test]
fn a_manifest_trickled_one_byte_every_2_s_is_refused_at_its_deadline() -> Result<()> {
    refused(
        Shape::TrickledManifest,
        "3",
        6,
        &["manifest from 127.0.0.1:PORT/hostile/app:1: no complete response within 3 s (got "],
    )
}

#[test]
fn a_token_reply_trickled_one_byte_every_2_s_is_refused_at_its_deadline() -> Result<()> {
    refused(
        Shape::TrickledToken,
        "3",
        6,
        &[
            "token for 127.0.0.1:PORT/hostile/app from http://127.0.0.1:PORT/token: \
             no complete response within 3 s (got ",
        ],
    )
}

#[test]
fn a_registry_that_always_trickles_a_blob_is_refused_after_six_connections() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    // Each connection fails within about a second (its headers too slow,
    // or its body below the floor), then backs off; the sixth ends the pull.
    refused(
        Shape::TrickledBlob,
        "1",
        40,
        &[
            "from 127.0.0.1:PORT/hostile/app: no response headers within 1 s; resuming",
            "from 127.0.0.1:PORT/hostile/app: download incomplete after 6 connections; \
             the last: ",
            "slower than the floor of 64 KiB/s",
        ],
    )
}

#[test]
fn an_endless_manifest_is_refused_past_4_mib() -> Result<()> {
    refused(
        Shape::EndlessManifest,
        "30",
        5,
        &["manifest from 127.0.0.1:PORT/hostile/app:1: more than the 4194304 bytes"],
    )
}

#[test]
fn a_blob_longer_than_its_size_is_refused() -> Result<()> {
    for with_length in [true, false] {
        let sent = if with_length { "Content-Length " } else { "" };
        refused(
            Shape::OversizedBlob { with_length },
            "30",
            5,
            &[
                "from 127.0.0.1:PORT/hostile/app: ",
                sent,
                "more than the ",
                " bytes the manifest gives",
            ],
        )?;
    }
    Ok(())
}

#[test]
fn a_40_mb_index_is_refused_from_its_length() -> Result<()> {
    refused(
        Shape::HugeIndex,
        "30",
        5,
        &["manifest from 127.0.0.1:PORT/hostile/app:1: Content-Length 40000000, more than"],
    )
}

#[test]
fn an_endless_token_reply_is_refused_past_1_mib() -> Result<()> {
    refused(
        Shape::EndlessToken,
        "30",
        5,
        &[
            "token for 127.0.0.1:PORT/hostile/app from http://127.0.0.1:PORT/token: \
             a reply of more than 1048576 bytes",
        ],
    )
}
