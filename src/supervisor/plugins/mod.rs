//! What berth runs on a container's behalf but does not own: OCI hooks,
//! CNI plugins, Docker volume plugins, CDI device specs. No knowledge of the supervisor.

pub mod cdi;
pub mod hooks;
pub mod network;
pub mod volumes;

/// A plugin's words (an error page, a parser's message quoting its
/// input) can be as long as the input; a message needs only its start.
pub(crate) fn clip(text: &str) -> &str {
    const MAX_CHARS: usize = 512;
    match text.char_indices().nth(MAX_CHARS) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}
